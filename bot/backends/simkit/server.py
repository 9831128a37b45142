"""A simulator's life as an HTTP server: serving its aiohttp app on a port and stopping, the requests it
recorded, and the switch that makes it look down.

The routes, the token check, the order of its middleware's steps and every answer are each backend's contract
and stay in its own simulator; this is only what both do the same way around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from .answers import BadBody, read_body

__all__ = ["HttpSimulator", "RecordedRequest"]


@dataclass
class RecordedRequest:
    """One request the simulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_path: str = ""  # path and query as sent, before percent-decoding


class HttpSimulator:
    """start()/close() or `async with`, base_url, the recorded requests and the outage switch of a simulator.

    A subclass gives make_app() (its routes and middleware, whose cleanup opens and closes its engine) and the
    path its API is served under; its middleware calls _record() first, and answers its backend's outage page
    while _outage is set.
    """

    def __init__(self, *, api_path: str) -> None:
        self.requests: list[RecordedRequest] = []
        self._api_path = api_path  # what base_url adds to http://host:port, e.g. "/v2" or "/mj"
        self._outage: int | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    def make_app(self) -> web.Application:
        """The aiohttp application; start() serves it, or hand it to any aiohttp runner."""
        raise NotImplementedError

    def _bound(self, root: str) -> None:
        """Called once serving, with http://host:port, for a subclass that serves files from there."""

    # ---- lifecycle of the server itself

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (0 picks a free port); base_url tells where."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        # No access log: every request is in `requests` already, and at INFO it drowned the bot's own log
        # when the simulator runs embedded in the bot.
        runner = web.AppRunner(self.make_app(), shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        public_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - naming it, not binding
        root = f"http://{public_host}:{runner.addresses[0][1]}"
        self._bound(root)
        self._base_url = f"{root}{self._api_path}"

    async def close(self) -> None:
        """Stop serving; the app's cleanup cancels job clocks and pending callbacks."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """The API root, e.g. http://127.0.0.1:PORT/v2 (useapi) or http://127.0.0.1:PORT/mj (an mj-proxy)."""
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    # ---- what tests read and switch

    def calls(self, path_suffix: str) -> list[RecordedRequest]:
        """The recorded requests whose path ends with path_suffix, e.g. "jobs/button" or "submit/action"."""
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def set_outage(self, down: bool, *, status: int = 503) -> None:
        """While down, every API request answers status with the HTML page of a reverse proxy in front of a
        down backend (not JSON)."""
        self._outage = status if down else None

    async def _record(self, request: web.Request) -> tuple[dict[str, Any] | None, bool]:
        """Record the request; return its JSON body (None without one) and whether the body was not a JSON
        object, which each backend answers in its own words and at its own step."""
        try:
            body, bad_body = await read_body(request), False
        except BadBody:
            body, bad_body = None, True
        self.requests.append(RecordedRequest(method=request.method, path=request.path, query=dict(request.query),
                                             headers=dict(request.headers), body=body, raw_path=request.raw_path))
        return body, bad_body
