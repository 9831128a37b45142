"""A simulator of useapi.net's Midjourney v2 API on a real aiohttp server; every job and image it makes is simulated."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import io
import json
import logging
import math
import random
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Self

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from PIL import Image, ImageDraw

__all__ = [
    "DISCORD_429_BODY",
    "GRID_BUTTONS",
    "MODERATED_BODY",
    "UPSCALE_BUTTONS",
    "RecordedRequest",
    "Simulator",
    "main",
]

log = logging.getLogger(__name__)

ARROWS = ["⬅️", "➡️", "⬆️", "⬇️"]
GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
UPSCALE_BUTTONS = [
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    *ARROWS,
]
# The button enum of useapi's OpenAPI file: anything else is "not supported".
SUPPORTED_BUTTONS = frozenset(
    {
        "U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", *ARROWS, "🔄",
        "Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x",
        "Upscale (2x)", "Upscale (4x)", "Upscale (Subtle)", "Upscale (Creative)",
        "Redo Upscale (2x)", "Redo Upscale (4x)", "Redo Upscale (Subtle)", "Redo Upscale (Creative)",
        "Make Square", "Make Variations", "Remaster", "Custom Zoom",
    }
)  # fmt: skip
ONE_SHOT_BUTTONS = frozenset({"U1", "U2", "U3", "U4"})
EXECUTING = frozenset({"created", "started", "progress"})

MENTION = "<@1308>"
MAX_PROMPT = 2048
MAX_REPLY = 1024
DEFAULT_MAX_JOBS = 3
DISCORD_EPOCH_MS = 1_420_070_400_000

MODERATED_BODY: dict[str, Any] = {
    "error": "Action needed to continue",
    "errorDetails": "Sorry! Our AI moderators feel your prompt might be against our community standards.",
    "status": "moderated",
    "code": 422,
}
DISCORD_429_BODY: dict[str, Any] = {
    "error": "Discord /interactions failed with HTTP status 429",
    "errorDetails": '{"global":true,"message":"You are being rate limited.","retry_after":10}',
    "code": 429,
}
PENDING_MOD_ERROR = (
    "Your Discord account has received a pending moderation message from Midjourney. Please address this "
    "issue and reset the /account pendingModMessage before making any new API calls."
)
PENDING_MOD_DETAILS = "You have a pending moderation message. Please acknowledge it before using the bot further."
_STATUS_ERRORS = {
    401: "Unauthorized",
    402: "Account has no subscription or subscription expired",
}
_REMIX_REPLY = {
    True: "Remix mode turned on! You can disable it by running `/prefer remix` again.",
    False: "Remix mode turned off! You can enable it by running `/prefer remix` again.",
}
_FORBIDDEN = re.compile(r"\bforbidden\b", re.IGNORECASE)
_BAD_PARAM = re.compile(r"--(badparam)\b")


@dataclass
class RecordedRequest:
    """One request the simulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_path: str = ""  # path and query as sent, before percent-decoding


@dataclass
class _Injection:
    endpoint: str
    status: int
    body: dict[str, Any] | None
    remaining: int
    complete_later: bool


@dataclass
class _JobMeta:
    root: str
    started_at: float
    lifecycle: asyncio.Task[None] | None = None
    # Callbacks of one job go out in the order they were made, even when a receiver is slow.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _BadBody(Exception):
    """The request body is not a JSON object."""


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _json(status: int, data: Any) -> web.Response:
    reason = "Pending mod message" if status == 596 else None
    return web.json_response(data, status=status, reason=reason, dumps=partial(json.dumps, ensure_ascii=False))


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json(status, {"error": message, **extra, "code": status})


def _mask(secret: Any) -> str:
    if isinstance(secret, str) and len(secret) >= 6:
        return f"{secret[:3]}…{secret[-3:]}"
    return "abc…xyz"


def _is_single_image(button: str | None) -> bool:
    return button is not None and (button in ONE_SHOT_BUTTONS or "Upscale (" in button)


def _next_buttons(button: str | None) -> list[str]:
    if button in ONE_SHOT_BUTTONS:
        return list(UPSCALE_BUTTONS)
    if button is not None and "Upscale (" in button:
        kind = button[button.index("(") :]
        return [f"Redo Upscale {kind}", *UPSCALE_BUTTONS[2:]]
    return list(GRID_BUTTONS)


def _label(button: str | None) -> str:
    """What Midjourney writes between the prompt and the mention for a job made by this button."""
    if button is None or button in ("🔄", "Remaster"):
        return ""
    if button in ONE_SHOT_BUTTONS:
        return f"Image #{button[1]} "
    if (button.startswith("V") and len(button) == 2) or button == "Make Variations":
        return "Variations by "
    if button.startswith("Vary ("):
        return f"Variations {button[5:]} by "
    if "Upscale (" in button:
        return f"Upscaled {button[button.index('(') :]} by "
    if button.startswith("Zoom Out") or button == "Custom Zoom":
        return "Zoom Out by "
    pans = dict(zip(ARROWS, ("Left", "Right", "Up", "Down"), strict=True))
    if button in pans:
        return f"Pan {pans[button]} by "
    return f"{button} by "


def _render_png(jobid: str, side: int, grid: bool, image_bytes: int | None) -> tuple[bytes, int]:
    digest = hashlib.sha256(jobid.encode()).digest()
    colour = (digest[0], digest[1], digest[2])
    if image_bytes:
        # Random pixels do not compress, so the file ends up close to image_bytes.
        side = max(side, math.isqrt(image_bytes // 3) + 1)
        noise = random.Random(digest).randbytes(side * side * 3)
        image = Image.frombytes("RGB", (side, side), noise)
    else:
        image = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(image)
    ink = (255, 255, 255) if sum(colour) < 384 else (0, 0, 0)
    if grid:
        half = side // 2
        draw.line([(half, 0), (half, side)], fill=ink, width=2)
        draw.line([(0, half), (side, half)], fill=ink, width=2)
    draw.text((4, 4), "SIMULATED", fill=ink)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1 if image_bytes else 6)
    return out.getvalue(), side


class Simulator:
    """useapi.net v2 on loopback: job lifecycle on a clock, replyUrl callbacks, maxJobs, every error on demand."""

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
        self._token = token
        self._job_seconds = job_seconds
        self._post_delay = post_delay
        self._progress_steps = max(0, progress_steps)
        self.channel = channel
        self.server = server
        self._image_bytes = image_bytes
        self._callback_timeout = callback_timeout
        self._stale_seconds = stale_seconds
        self._account_max_jobs = account_max_jobs

        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.callbacks: list[tuple[str, dict[str, Any], int | None]] = []
        self.max_executing_seen = 0
        self.rejections_429 = 0
        self.remix_on = False

        self._meta: dict[str, _JobMeta] = {}
        # Insertion-ordered set of executing jobids, so counting never scans finished jobs.
        self._executing: dict[str, None] = {}
        self._files: dict[str, bytes] = {}
        self._injections: list[_Injection] = []
        self._outage: int | None = None
        self._pending_mod = False
        self._last_ms = 0
        self._seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()
        # Replaced on every job or callback change, so waiters need no polling.
        self._changed = asyncio.Event()
        self._closed = False
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ---- lifecycle of the server itself

    def make_app(self) -> web.Application:
        """The aiohttp application; start() serves it, or hand it to any aiohttp runner or test server."""
        app = web.Application(middlewares=[self._middleware()])
        app.router.add_post("/v2/jobs/imagine", self._imagine)
        app.router.add_post("/v2/jobs/button", self._button)
        app.router.add_post("/v2/jobs/remix", self._remix)
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

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (0 picks a free port); base_url tells where."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        runner = web.AppRunner(self.make_app(), shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        started = False
        try:
            await site.start()
            started = True
        finally:
            if not started:
                await runner.cleanup()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        public_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - naming it, not binding
        self._base_url = f"http://{public_host}:{bound_port}/v2"

    async def close(self) -> None:
        """Stop serving, cancel job clocks and pending callbacks, close the callback session."""
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
        """The API root, e.g. http://127.0.0.1:PORT/v2."""
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    async def _on_shutdown(self, _app: web.Application) -> None:
        # Lets requests parked in post_delay answer at once instead of holding the shutdown.
        self._closing.set()

    async def _resources(self, _app: web.Application) -> AsyncIterator[None]:
        self._closed = False
        self._closing.clear()
        self._session = aiohttp.ClientSession()
        try:
            yield
        finally:
            self._closed = True
            self._closing.set()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()
            session, self._session = self._session, None
            await session.close()

    # ---- controls for tests

    def calls(self, path_suffix: str) -> list[RecordedRequest]:
        """The recorded requests whose path ends with path_suffix, e.g. "jobs/button"."""
        return [r for r in self.requests if r.path.endswith(path_suffix)]

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
        self._injections.append(_Injection(endpoint, status, body, times, complete_later))

    def set_post_delay(self, seconds: float) -> None:
        """Answer every later POST after `seconds` (a slow useapi; 0 for prompt answers again)."""
        self._post_delay = seconds

    def set_outage(self, down: bool, *, status: int = 503) -> None:
        """While down, every API request answers status with a proxy's non-JSON page."""
        self._outage = status if down else None

    def set_pending_mod(self, on: bool) -> None:
        """Turn the 596 state on or off (POST account/midjourney/{channel}/reset also clears it)."""
        self._pending_mod = on

    @property
    def pending_mod(self) -> bool:
        """Whether every call answers 596 now."""
        return self._pending_mod

    def executing(self) -> list[str]:
        """The jobids executing now; jobs running past stale_seconds are failed here, as useapi does."""
        now = asyncio.get_running_loop().time()
        for jobid in list(self._executing):
            if now - self._meta[jobid].started_at > self._stale_seconds:
                log.info("simulated job %s ran too long: failed", jobid)
                self._set_final(jobid, "failed", error="Job failed to complete within 30 minutes")
        return list(self._executing)

    async def complete(self, jobid: str) -> None:
        """Complete a job now (any status) and wait for its callback to be delivered."""
        self._stop_clock(jobid)
        await self._await(await self._finish(jobid))

    async def fail(self, jobid: str, error: str = "Midjourney could not finish this job (simulated)") -> None:
        """Fail a job now and wait for its callback to be delivered."""
        self._stop_clock(jobid)
        await self._await(self._set_final(jobid, "failed", error=error))

    async def progress(self, jobid: str, percent: int) -> None:
        """Report progress on a job now and wait for its callback to be delivered."""
        await self._await(self._set_progress(jobid, percent))

    async def wait_final(self, jobid: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a job is no longer executing and return it."""
        await self._wait_until(lambda: self.jobs[jobid]["status"] not in EXECUTING, timeout)
        return copy.deepcopy(self.jobs[jobid])

    async def wait_status(self, jobid: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a job has this status and return it."""
        await self._wait_until(lambda: self.jobs[jobid]["status"] == status, timeout)
        return copy.deepcopy(self.jobs[jobid])

    async def wait_callbacks(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least `count` callbacks were attempted."""
        await self._wait_until(lambda: len(self.callbacks) >= count, timeout)

    async def _wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if done():
                    return
                await changed.wait()

    # ---- middleware: record, delay, outage, auth, injections, 596

    def _middleware(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                body = await self._read_body(request)
                bad_body = False
            except _BadBody:
                body, bad_body = None, True
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    body=body,
                    raw_path=request.raw_path,
                )
            )
            if request.method == "POST" and self._post_delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=self._post_delay)
            api = request.path.startswith("/v2/")
            if api and self._outage is not None:
                phrase = _phrase(self._outage)
                page = f"<html><body><h1>{self._outage} {phrase}</h1></body></html>"
                return web.Response(status=self._outage, text=page, content_type="text/html")
            if api and not self._authorized(request):
                return _error(401, "Unauthorized")
            injection = self._take_injection(request.path)
            if injection is not None:
                return self._answer_injection(injection, request, body or {})
            if api and self._pending_mod and not self._mod_exempt(request):
                return _error(596, PENDING_MOD_ERROR)
            if bad_body:
                return _error(400, "Request body must be a JSON object")
            return await handler(request)

        return gate

    @staticmethod
    async def _read_body(request: web.Request) -> dict[str, Any] | None:
        if not request.body_exists:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise _BadBody from None
        if not isinstance(data, dict):
            raise _BadBody
        return data

    async def _body(self, request: web.Request) -> dict[str, Any]:
        # The middleware already proved the body parses; request.read() is cached.
        return await self._read_body(request) or {}

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

    def _take_injection(self, path: str) -> _Injection | None:
        for injection in self._injections:
            if injection.remaining > 0 and path.endswith(injection.endpoint):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return injection
        return None

    def _answer_injection(self, injection: _Injection, request: web.Request, body: dict[str, Any]) -> web.Response:
        status = injection.status
        if status == 596:
            self._pending_mod = True
        payload = injection.body if injection.body is not None else self._default_body(injection, request, body)
        if status == 429 and "executingJobs" in payload:
            self.rejections_429 += 1
        return _json(status, payload)

    def _default_body(self, injection: _Injection, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        status = injection.status
        path = request.path
        makes_job = path.endswith(("jobs/imagine", "jobs/button"))
        jobid = str(body.get("jobid") or request.query.get("jobid") or "<jobid>")
        if status == 400:
            return {"error": "prompt is missing" if path.endswith("imagine") else "jobid is missing", "code": 400}
        if status == 404:
            return {"error": f"Unable to locate job {jobid}", "code": 404}
        if status == 409:
            button = str(body.get("button") or "U1")
            parent = self.jobs.get(jobid, {})
            existing = next(
                (c["jobid"] for c in parent.get("children", []) if c.get("button") == button),
                self._new_jobid(self.channel),
            )
            return {
                "error": f"Button {button} already executed by job {existing}",
                "button": button,
                "jobid": existing,
                "code": 409,
            }
        if status == 422:
            if makes_job:
                return self._record_refused(request, body, "moderated", 422, MODERATED_BODY)
            return dict(MODERATED_BODY)
        if status == 429:
            max_jobs = body.get("maxJobs", DEFAULT_MAX_JOBS)
            return {
                "error": f"Maximum of {max_jobs} jobs executing in parallel supported",
                "executingJobs": self.executing(),
                "code": 429,
            }
        if status == 504:
            if not makes_job:
                return {"error": "Gateway Timeout", "code": 504}
            job = self._record_refused(request, body, "failed", 504, {"error": "Job queued"})
            if injection.complete_later and self._job_seconds is not None:
                meta = self._meta[job["jobid"]]
                meta.lifecycle = self._spawn(self._run_queued(job["jobid"], self._job_seconds))
            return {"error": "Job queued", "jobid": job["jobid"], "status": "failed", "code": 504}
        if status == 596:
            if makes_job:
                details = {"error": "Pending mod message", "errorDetails": PENDING_MOD_DETAILS}
                return self._record_refused(request, body, "failed", 596, details)
            return {"error": PENDING_MOD_ERROR, "code": 596}
        return {"error": _STATUS_ERRORS.get(status) or _phrase(status), "code": status}

    # ---- API handlers

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error(400, "prompt is missing")
        if len(prompt) > MAX_PROMPT:
            return _error(400, "prompt is too long")
        invalid = self._check_common(body)
        if invalid is not None:
            return invalid
        max_jobs = int(body.get("maxJobs", DEFAULT_MAX_JOBS))
        full = self._queue_full(max_jobs)
        if full is not None:
            return full
        refused = self._moderate(request, body, prompt)
        if refused is not None:
            return refused
        job = self._new_job(request, body, verb="imagine", prompt=prompt)
        self._launch(job["jobid"])
        return _json(200, job)

    async def _button(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for name in ("jobid", "button"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _error(400, f"{name} is missing")
        jobid: str = body["jobid"]
        button: str = body["button"]
        invalid = self._check_common(body)
        if invalid is not None:
            return invalid
        if button not in SUPPORTED_BUTTONS:
            return _error(400, f"button {button} not supported")
        parent = self.jobs.get(jobid)
        if parent is None:
            return _error(404, f"Unable to locate job {jobid}")
        if parent.get("status") != "completed":
            return _error(400, f"job {jobid} is {parent.get('status')}, only completed jobs accept buttons")
        buttons = parent.get("buttons", [])
        if button not in buttons:
            listed = json.dumps(buttons, ensure_ascii=False)
            return _error(400, f"button {button} not found in job {jobid} buttons {listed}")
        prompt = body.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
            return _error(400, "prompt is too long" if isinstance(prompt, str) else "prompt must be a string")
        if button == "Custom Zoom" and not (isinstance(prompt, str) and prompt.strip()):
            return _error(400, "prompt is missing")
        if button in ONE_SHOT_BUTTONS:
            for child in parent.get("children", []):
                if child.get("button") == button:
                    return _error(
                        409,
                        f"Button {button} already executed by job {child['jobid']}",
                        button=button,
                        jobid=child["jobid"],
                    )
        max_jobs = int(body.get("maxJobs", DEFAULT_MAX_JOBS))
        full = self._queue_full(max_jobs)
        if full is not None:
            return full
        if isinstance(prompt, str):
            refused = self._moderate(request, body, prompt)
            if refused is not None:
                return refused
        job = self._new_job(request, body, verb="button", prompt=prompt or parent.get("prompt") or "")
        self._launch(job["jobid"])
        return _json(200, job)

    async def _remix(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        invalid = self._check_common(body, max_jobs=False)
        if invalid is not None:
            return invalid
        self.remix_on = not self.remix_on
        reply = _REMIX_REPLY[self.remix_on]
        job = self._new_job(request, body, verb="remix", prompt=None)
        job.update(
            status="completed",
            content=reply,
            embeds=[{"type": "rich", "description": reply}],
            updated=_now_iso(),
        )
        self._send_callback(job["jobid"])
        return _json(200, job)

    async def _get_job(self, request: web.Request) -> web.Response:
        jobid = request.query.get("jobid")
        if not jobid:
            return _error(400, "jobid is missing")
        self.executing()
        job = self.jobs.get(jobid)
        if job is None:
            return _error(404, f"Unable to locate job {jobid}")
        return _json(200, job)

    async def _get_executing(self, _request: web.Request) -> web.Response:
        return _json(200, self.executing())

    async def _cancel(self, request: web.Request) -> web.Response:
        jobid = request.query.get("jobid")
        if not jobid:
            return _error(400, "jobid is missing")
        job = self.jobs.get(jobid)
        if job is None:
            return _error(404, f"Unable to locate job {jobid}")
        if job["status"] in EXECUTING:
            self._stop_clock(jobid)
            self._set_final(jobid, "cancelled")
        return _json(200, {"jobid": jobid, "status": job["status"], "code": 200})

    async def _account(self, _request: web.Request) -> web.Response:
        account: dict[str, Any] = {
            "discord": "abc…xyz",
            "server": self.server,
            "channel": self.channel,
            "maxJobs": self._account_max_jobs,
        }
        if self._pending_mod:
            account["pendingModMessage"] = PENDING_MOD_DETAILS
        return _json(200, {self.channel: account})

    async def _reset(self, request: web.Request) -> web.Response:
        if request.match_info["channel"] != self.channel:
            return _error(404, "Configuration not found for provided channel")
        self._pending_mod = False
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="404: Not Found")
        return web.Response(body=data, content_type="image/png")

    # ---- validation

    def _check_common(self, body: dict[str, Any], *, max_jobs: bool = True) -> web.Response | None:
        for name in ("replyUrl", "replyRef"):
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                return _error(400, f"{name} must be a string")
            if len(value) > MAX_REPLY:
                return _error(400, f"{name} is too long")
        if max_jobs and "maxJobs" in body:
            value = body["maxJobs"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 15:
                return _error(400, "maxJobs must be an integer between 1 and 15")
        return None

    def _queue_full(self, max_jobs: int) -> web.Response | None:
        executing = self.executing()
        if len(executing) < max_jobs:
            return None
        self.rejections_429 += 1
        return _error(429, f"Maximum of {max_jobs} jobs executing in parallel supported", executingJobs=executing)

    def _moderate(self, request: web.Request, body: dict[str, Any], prompt: str) -> web.Response | None:
        if _FORBIDDEN.search(prompt):
            refusal = MODERATED_BODY
        elif match := _BAD_PARAM.search(prompt):
            refusal = {
                "error": "Invalid parameter",
                "errorDetails": f"Unrecognized parameter(s): `{match.group(1)}`",
            }
        else:
            return None
        return _json(422, self._record_refused(request, body, "moderated", 422, refusal))

    # ---- jobs

    def _new_jobid(self, channel: str) -> str:
        # Millisecond stamps as useapi uses, bumped on a tie so that two jobs never share an id.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        stamp = datetime.fromtimestamp(self._last_ms / 1000, UTC).strftime("%Y%m%d%H%M%S")
        return f"job:{stamp}{self._last_ms % 1000:03d}-user:1308-channel:{channel}-bot:midjourney"

    def _snowflake(self) -> str:
        self._seq += 1
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) + (self._seq & 0x3FFFFF))

    def _new_job(
        self,
        request: web.Request,
        body: dict[str, Any],
        *,
        verb: str,
        prompt: str | None,
        link_child: bool = True,
    ) -> dict[str, Any]:
        channel = str(body.get("channel") or self.channel)
        jobid = self._new_jobid(channel)
        now = _now_iso()
        job: dict[str, Any] = {"jobid": jobid, "verb": verb, "status": "started", "created": now, "updated": now}
        parent = self.jobs.get(str(body.get("jobid"))) if verb == "button" else None
        if verb == "button":
            job["button"] = body.get("button")
            job["parentJobId"] = body.get("jobid")
        if prompt is not None:
            job["prompt"] = prompt
        job.update(
            discord=_mask(body.get("discord")),
            channel=parent.get("channel", channel) if parent else channel,
            server=self.server,
        )
        if verb in ("imagine", "button"):
            job["maxJobs"] = body.get("maxJobs", DEFAULT_MAX_JOBS)
        for name in ("replyUrl", "replyRef"):
            if isinstance(body.get(name), str):
                job[name] = body[name]
        job["messageId"] = self._snowflake()
        if prompt is not None:
            job["content"] = f"**{prompt}** - {MENTION} (Waiting to start)"
        job["timestamp"] = datetime.now(UTC).isoformat()
        job["code"] = 200
        self.jobs[jobid] = job
        loop = asyncio.get_running_loop()
        self._meta[jobid] = _JobMeta(root=f"{request.scheme}://{request.host}", started_at=loop.time())
        if parent is not None and link_child:
            child = {"button": job["button"], "jobid": jobid, "messageId": job["messageId"]}
            parent.setdefault("children", []).append(child)
        return job

    def _record_refused(
        self, request: web.Request, body: dict[str, Any], status: str, code: int, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Keep a job refused at submission (moderated, queued, pending mod) as useapi does; return its body."""
        verb = "button" if request.path.endswith("jobs/button") else "imagine"
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            parent = self.jobs.get(str(body.get("jobid")), {})
            prompt = parent.get("prompt", "") if verb == "button" else ""
        # Only a queued job (504) still runs at Midjourney, so only it takes the button on its parent.
        job = self._new_job(request, body, verb=verb, prompt=prompt, link_child=code == 504)
        fields = {k: v for k, v in fields.items() if k != "code"}
        job.update(fields, status=status, updated=_now_iso())
        stored = copy.deepcopy(job)
        job["code"] = code
        self.jobs[job["jobid"]] = stored
        return job

    def _launch(self, jobid: str) -> None:
        self._executing[jobid] = None
        self.max_executing_seen = max(self.max_executing_seen, len(self._executing))
        self._send_callback(jobid)
        if self._job_seconds is not None:
            self._meta[jobid].lifecycle = self._spawn(self._run(jobid, self._job_seconds))

    async def _run(self, jobid: str, seconds: float) -> None:
        steps = self._progress_steps
        pause = seconds / (steps + 1)
        for step in range(1, steps + 1):
            await asyncio.sleep(pause)
            if self.jobs[jobid]["status"] not in EXECUTING:
                return
            self._set_progress(jobid, round(100 * step / (steps + 1)))
        await asyncio.sleep(pause)
        if self.jobs[jobid]["status"] in EXECUTING:
            await self._finish(jobid)

    async def _run_queued(self, jobid: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.jobs[jobid]["status"] == "failed":
            await self._finish(jobid)

    def _stop_clock(self, jobid: str) -> None:
        task = self._meta[jobid].lifecycle
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._meta[jobid].lifecycle = None

    def _set_progress(self, jobid: str, percent: int) -> asyncio.Task[None] | None:
        job = self.jobs[jobid]
        label = _label(job.get("button"))
        job.update(
            status="progress",
            updated=_now_iso(),
            content=f"**{job.get('prompt', '')}** - {label}{MENTION} ({percent}%) (fast)",
        )
        return self._send_callback(jobid)

    def _set_final(self, jobid: str, status: str, *, error: str | None = None) -> asyncio.Task[None] | None:
        job = self.jobs[jobid]
        self._executing.pop(jobid, None)
        self._stop_clock(jobid)
        job.update(status=status, updated=_now_iso())
        if error is not None:
            job["error"] = error
        return self._send_callback(jobid)

    async def _finish(self, jobid: str) -> asyncio.Task[None] | None:
        job = self.jobs[jobid]
        button = job.get("button")
        single = _is_single_image(button)
        side = 256 if single else 128
        if self._image_bytes:
            png, side = await asyncio.to_thread(_render_png, jobid, side, not single, self._image_bytes)
        else:
            png, side = _render_png(jobid, side, not single, None)
        key = hashlib.sha256(jobid.encode()).hexdigest()[:24]
        name = f"{key}.png"
        self._files[name] = png
        now = int(time.time())
        expires = now + 24 * 3600
        signature = hashlib.sha256(f"{name}{expires}".encode()).hexdigest()
        query = f"?ex={expires:x}&is={now:x}&hm={signature}&"
        root = self._meta[jobid].root
        suffix = "" if button in ONE_SHOT_BUTTONS else " (fast)"
        job.update(
            content=f"**{job.get('prompt', '')}** - {_label(button)}{MENTION}{suffix}",
            buttons=_next_buttons(button),
            attachments=[
                {
                    "id": self._snowflake(),
                    "url": f"{root}/attachments/{name}{query}",
                    "proxy_url": f"{root}/media/attachments/{name}{query}",
                    "filename": f"simulated_{name}",
                    "content_type": "image/png",
                    "size": len(png),
                    "width": side,
                    "height": side,
                }
            ],
        )
        job.pop("error", None)
        job.pop("errorDetails", None)
        return self._set_final(jobid, "completed")

    # ---- callbacks

    def _send_callback(self, jobid: str) -> asyncio.Task[None] | None:
        self._notify()
        job = self.jobs[jobid]
        url = job.get("replyUrl")
        if not url:
            return None
        payload = copy.deepcopy(job)
        payload["code"] = 200
        return self._spawn(self._deliver(self._meta[jobid].lock, url, payload))

    async def _deliver(self, lock: asyncio.Lock, url: str, payload: dict[str, Any]) -> None:
        async with lock:
            status: int | None = None
            try:
                if self._session is None:
                    raise RuntimeError("simulator is not serving")
                timeout = aiohttp.ClientTimeout(total=self._callback_timeout)
                async with self._session.post(url, json=payload, timeout=timeout) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                log.info("simulated callback to %s failed: %r", url, exc)
            self.callbacks.append((url, payload, status))
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    @staticmethod
    async def _await(task: asyncio.Task[None] | None) -> None:
        if task is not None:
            await asyncio.shield(task)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    await simulator.start(host, port)
    print(f"useapi simulator (all results are simulated) serving {simulator.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await simulator.close()


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGINT/SIGTERM: python -m bot.backends.useapi.simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.backends.useapi.simulator",
        description="A simulated useapi.net Midjourney v2 API (all results are simulated).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--job-seconds", type=float, default=2.0, help="job duration; negative = manual mode")
    parser.add_argument("--progress-steps", type=int, default=1)
    parser.add_argument("--post-delay", type=float, default=0.0)
    parser.add_argument("--token", default="sim-token", help="bearer token to require")
    parser.add_argument("--any-token", action="store_true", help="accept any bearer token")
    parser.add_argument("--image-bytes", type=int, default=None, help="make result PNGs about this large")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    simulator = Simulator(
        token=None if args.any_token else args.token,
        job_seconds=None if args.job_seconds < 0 else args.job_seconds,
        post_delay=args.post_delay,
        progress_steps=args.progress_steps,
        image_bytes=args.image_bytes,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator, args.host, args.port))


if __name__ == "__main__":
    main()
