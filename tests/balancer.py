"""A load balancer on loopback, as a platform puts in front of several bot processes: one PUBLIC_URL, each
request passed to the next process in turn (round robin), skipping a process that does not answer (killed).

It forwards method, path, query, headers and body, and answers with the process's status and body: enough for
the backends' callbacks and the listener's routes."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "host", "content-length"})


class Balancer:
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._turn = itertools.cycle(range(len(ports)))
        self.forwarded: dict[int, int] = dict.fromkeys(ports, 0)  # requests each process answered
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Balancer:
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        for _ in self.ports:
            port = self.ports[next(self._turn)]
            url = f"http://127.0.0.1:{port}{request.path_qs}"
            try:
                async with self._session.request(request.method, url, data=body, headers=headers) as answer:
                    payload = await answer.read()
                    self.forwarded[port] += 1
                    kept: dict[str, Any] = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except aiohttp.ClientConnectionError:
                continue  # that process is gone: the next one takes it, as a health-checked balancer would
        return web.Response(status=502, text="no process answered")
