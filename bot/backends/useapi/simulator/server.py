"""The simulator's HTTP face: useapi.net's v2 routes on a real aiohttp server, and the controls tests use."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.backends.simkit import HttpSimulator, RecordedRequest, checked_body, root_of
from bot.backends.useapi.facts import DEFAULT_MAX_JOBS

from .answers import (
    PENDING_MOD_DETAILS,
    PENDING_MOD_ERROR,
    check_button,
    check_imagine,
    error,
    json_response,
    outage_page,
)
from .commands import CommandRoutes
from .engine import JobEngine
from .injections import Injection, Injections

__all__ = ["RecordedRequest", "Simulator"]


class Simulator(CommandRoutes, HttpSimulator):
    """useapi.net v2 on loopback: job lifecycle on a clock, replyUrl callbacks, maxJobs, every error on demand.

    The jobs live in `engine`, a JobEngine; JobControls gives its controls and state (jobs, callbacks...);
    CommandRoutes the routes of describe, blend, seed_async and the settings commands; HttpSimulator serving,
    the recorded requests and the outage switch.
    """

    def __init__(
        self,
        *,
        token: str | None = "sim-token",  # noqa: S107 - the simulator's published test token
        job_seconds: float | None = 2.0,
        post_delay: float = 0.0,
        progress_steps: int = 1,
        channel: str = "1100000000000000001",
        server: str = "1000000000000000001",
        image_bytes: int | None = None,
        callback_timeout: float = 5.0,
        stale_seconds: float = 30 * 60.0,
        account_max_jobs: int = DEFAULT_MAX_JOBS,
    ) -> None:
        super().__init__(api_path="/v2")
        self.engine = JobEngine(
            job_seconds=job_seconds,
            progress_steps=progress_steps,
            channel=channel,
            server=server,
            image_bytes=image_bytes,
            callback_timeout=callback_timeout,
            stale_seconds=stale_seconds,
        )
        self._token = token
        self._post_delay = post_delay
        self._account_max_jobs = account_max_jobs
        self.rejections_429 = 0
        self.remix_on = False
        self.speed = "fast"  # a Midjourney account's speed until /relax or /turbo
        self._injections = Injections(self.engine)
        self._pending_mod = False
        self._closing = asyncio.Event()

    # ---- lifecycle of the server itself

    def make_app(self) -> web.Application:
        """The aiohttp application; start() serves it, or hand it to any aiohttp runner or test server."""
        app = web.Application(middlewares=[self._middleware()])
        app.router.add_post("/v2/jobs/imagine", self._imagine)
        app.router.add_post("/v2/jobs/button", self._button)
        self.add_command_routes(app)
        app.router.add_get("/v2/jobs/", self._get_job)
        app.router.add_get("/v2/jobs", self._get_executing)
        app.router.add_get("/v2/jobs/cancel/", self._cancel)
        app.router.add_get("/v2/account/midjourney", self._account)
        app.router.add_post("/v2/account/midjourney/{channel}/reset", self._reset)
        app.router.add_get("/attachments/{name}", self._attachment)
        app.router.add_get("/media/attachments/{name}", self._attachment)
        app.on_shutdown.append(self._on_shutdown)
        app.cleanup_ctx.append(self._resources)
        return app

    def _bound(self, root: str) -> None:
        # Loaded jobs have no request's root: their images are served from where the simulator listens.
        self.engine.root = root

    async def _on_shutdown(self, _app: web.Application) -> None:
        # Lets requests parked in post_delay answer at once instead of holding the shutdown.
        self._closing.set()

    async def _resources(self, _app: web.Application) -> AsyncIterator[None]:
        self._closing.clear()
        self.engine.open()
        try:
            yield
        finally:
            self._closing.set()
            await self.engine.close()

    # ---- controls for tests

    def inject(
        self,
        endpoint: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int = 1,
        complete_later: bool = False,
    ) -> None:
        """Answer the next `times` calls whose path ends with endpoint with status (and body, else a default)."""
        # complete_later: a 504's queued job still completes after job_seconds, as Midjourney would.
        self._injections.add(Injection(endpoint, status, body, times, complete_later))

    def set_post_delay(self, seconds: float) -> None:
        """Answer every later POST after `seconds` (a slow useapi; 0 for prompt answers again)."""
        self._post_delay = seconds

    def set_pending_mod(self, on: bool) -> None:
        """Turn the 596 state on or off (POST account/midjourney/{channel}/reset also clears it)."""
        self._pending_mod = on

    @property
    def pending_mod(self) -> bool:
        """Whether every call answers 596 now."""
        return self._pending_mod

    # ---- middleware: record, delay, outage, auth, injections, 596

    def _middleware(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            body, bad_body = await self._record(request)
            if request.method == "POST" and self._post_delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=self._post_delay)
            api = request.path.startswith("/v2/")
            if api and self._outage is not None:
                return outage_page(self._outage)
            if api and not self._authorized(request):
                return error(401, "Unauthorized")
            injection = self._injections.take(request.path)
            if injection is not None:
                return self._answer_injection(injection, request, body or {})
            if api and self._pending_mod and not self._mod_exempt(request):
                return error(596, PENDING_MOD_ERROR)
            if bad_body:
                return error(400, "Request body must be a JSON object")
            return await handler(request)

        return gate

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token.encode())

    @staticmethod
    def _mod_exempt(request: web.Request) -> bool:
        path = request.path
        return (request.method == "POST" and path.endswith("/reset")) or (
            request.method == "GET" and path == "/v2/account/midjourney"
        )

    def _answer_injection(self, injection: Injection, request: web.Request, body: dict[str, Any]) -> web.Response:
        status = injection.status
        if status == 596:
            self._pending_mod = True
        payload = self._injections.body(injection, request, body)
        if status == 429 and "executingJobs" in payload:
            self.rejections_429 += 1
        return json_response(status, payload)

    # ---- API handlers

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_imagine(body)
        if invalid is not None:
            return invalid
        prompt: str = body["prompt"]
        max_jobs = int(body.get("maxJobs", DEFAULT_MAX_JOBS))
        full = self._queue_full(max_jobs)
        if full is not None:
            return full
        refused = self._moderate(request, body, prompt)
        if refused is not None:
            return refused
        job = self.engine.new_job(root_of(request), body, verb="imagine", prompt=prompt)
        self.engine.launch(job["jobid"])
        return json_response(200, job)

    async def _button(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_button(body, self.jobs)
        if invalid is not None:
            return invalid
        parent = self.jobs[body["jobid"]]
        prompt = body.get("prompt")
        max_jobs = int(body.get("maxJobs", DEFAULT_MAX_JOBS))
        full = self._queue_full(max_jobs)
        if full is not None:
            return full
        if isinstance(prompt, str):
            refused = self._moderate(request, body, prompt)
            if refused is not None:
                return refused
        prompt = prompt or parent.get("prompt") or ""
        job = self.engine.new_job(root_of(request), body, verb="button", prompt=prompt)
        self.engine.launch(job["jobid"])
        return json_response(200, job)

    async def _get_job(self, request: web.Request) -> web.Response:
        jobid = request.query.get("jobid")
        if not jobid:
            return error(400, "jobid is missing")
        self.executing()
        job = self.jobs.get(jobid)
        if job is None:
            return error(404, f"Unable to locate job {jobid}")
        return json_response(200, job)

    async def _get_executing(self, _request: web.Request) -> web.Response:
        return json_response(200, self.executing())

    async def _cancel(self, request: web.Request) -> web.Response:
        jobid = request.query.get("jobid")
        if not jobid:
            return error(400, "jobid is missing")
        job = self.jobs.get(jobid)
        if job is None:
            return error(404, f"Unable to locate job {jobid}")
        self.engine.cancel(jobid)
        return json_response(200, {"jobid": jobid, "status": job["status"], "code": 200})

    async def _account(self, _request: web.Request) -> web.Response:
        account: dict[str, Any] = {
            "discord": "abc…xyz",
            "server": self.server,
            "channel": self.channel,
            "maxJobs": self._account_max_jobs,
        }
        if self._pending_mod:
            account["pendingModMessage"] = PENDING_MOD_DETAILS
        return json_response(200, {self.channel: account})

    async def _reset(self, request: web.Request) -> web.Response:
        if request.match_info["channel"] != self.channel:
            return error(404, "Configuration not found for provided channel")
        self._pending_mod = False
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.engine.file(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="404: Not Found")
        kind = "video/mp4" if request.match_info["name"].endswith(".mp4") else "image/png"
        return web.Response(body=data, content_type=kind)
