"""Each backend with its simulator, behind one set of neutral controls, for the `Backend` contract suite.

A rig owns a real simulator on loopback, the backend under test talking to it over a real session, and a
callback receiver; the contract tests drive the rig only through these controls, so every backend passes the
same tests unchanged. A new backend adds a rig here and its name to RIGS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar, Protocol

import aiohttp
from aiohttp import web

from bot.backends.base import Backend
from bot.backends.mjproxy.backend import MjproxyBackend
from bot.backends.mjproxy.client import MjproxyClient
from bot.backends.mjproxy.facts import CODE_BANNED_PROMPT, CODE_FAILURE, CODE_QUEUE_REJECTED, CODE_VALIDATION_ERROR
from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from bot.backends.useapi.backend import UseapiBackend
from bot.backends.useapi.client import UseapiClient
from bot.backends.useapi.simulator import Simulator
from bot.jobs import ErrorKind

JSON = dict[str, Any]


class Receiver:
    """A loopback server keeping every callback body a backend posts to it."""

    def __init__(self) -> None:
        self.bodies: list[JSON] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{ref}", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self._changed.set()
        return web.json_response({"ok": True})

    async def wait(self, check: Callable[[list[JSON]], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not check(self.bodies):
                self._changed.clear()
                await self._changed.wait()


class Rig(Protocol):
    """One backend under test, and what a test may do to its simulator."""

    backend: Backend
    receiver: Receiver
    refusable: frozenset[ErrorKind]  # the kinds `refuse_next` can produce at this backend

    async def finish(self, job_id: str) -> None:
        """Complete a running job now (its result made, its callback delivered)."""
        ...

    async def fail(self, job_id: str) -> None:
        """Fail a running job now."""
        ...

    async def progress(self, job_id: str, percent: int) -> None:
        """Report progress on a running job now."""
        ...

    def refuse_next(self, kind: ErrorKind) -> None:
        """Make the next submission answer with a refusal of this kind."""
        ...

    def down(self, is_down: bool) -> None:
        """Make the backend unreachable (a proxy's error page), or reachable again."""
        ...

    def with_token(self, token: str) -> Backend:
        """The same backend, configured with another token."""
        ...

    def answering(self) -> AbstractAsyncContextManager[None]:
        """While inside, the jobs a backend starts for itself (useapi's seed job) finish as Midjourney's would."""
        ...

    def withhold_speed(self, speed: str) -> bool:
        """Make the backend not offer this speed; False where it cannot be made to."""
        ...


class UseapiRig:
    """useapi v2 and its simulator, whose jobs run until the test says."""

    refusable = frozenset({ErrorKind.BUSY, ErrorKind.MODERATED, ErrorKind.NEEDS_HUMAN, ErrorKind.UNTRACKABLE,
                           ErrorKind.NO_SUBSCRIPTION})
    _STATUS: ClassVar[dict[ErrorKind, int]] = {ErrorKind.BUSY: 429, ErrorKind.MODERATED: 422,
                                               ErrorKind.NEEDS_HUMAN: 596, ErrorKind.UNTRACKABLE: 504,
                                               ErrorKind.NO_SUBSCRIPTION: 402}

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession, receiver: Receiver) -> None:
        self.sim = sim
        self.session = session
        self.receiver = receiver
        self.backend: Backend = self.with_token("rig-token-0123456789")

    def with_token(self, token: str) -> Backend:
        return UseapiBackend(UseapiClient(self.session, self.sim.base_url, token, timeout=5.0), seed_poll=0.02,
                             seed_timeout=5.0)

    def _seed_jobs(self) -> list[str]:
        return [jobid for jobid in self.sim.executing() if self.sim.jobs[jobid].get("verb") == "seed_async"]

    @asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        async def answer() -> None:
            while True:
                await self.sim.engine.wait_until(lambda: bool(self._seed_jobs()), timeout=3600)
                for jobid in self._seed_jobs():
                    await self.sim.complete(jobid)

        task = asyncio.create_task(answer())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def withhold_speed(self, speed: str) -> bool:
        # useapi's speeds are the Midjourney account's: Midjourney answers each in words, and the contract
        # describes no refusal for the simulator to give.
        return False

    async def finish(self, job_id: str) -> None:
        await self.sim.complete(job_id)

    async def fail(self, job_id: str) -> None:
        await self.sim.fail(job_id)

    async def progress(self, job_id: str, percent: int) -> None:
        await self.sim.progress(job_id, percent)

    def refuse_next(self, kind: ErrorKind) -> None:
        for endpoint in ("jobs/imagine", "jobs/button"):
            self.sim.inject(endpoint, self._STATUS[kind])

    def down(self, is_down: bool) -> None:
        self.sim.set_outage(is_down)


@asynccontextmanager
async def useapi_rig() -> AsyncIterator[Rig]:
    receiver = Receiver()
    await receiver.start()
    try:
        async with Simulator(token="rig-token-0123456789", job_seconds=None) as sim, \
                aiohttp.ClientSession() as session:
            yield UseapiRig(sim, session, receiver)
    finally:
        await receiver.close()


class MjproxyRig:
    """mj-proxy and its simulator, whose tasks run until the test says; refusals are its result codes."""

    refusable = frozenset({ErrorKind.BUSY, ErrorKind.MODERATED, ErrorKind.BAD_REQUEST, ErrorKind.JOB_FAILED})
    _CODE: ClassVar[dict[ErrorKind, int]] = {ErrorKind.BUSY: CODE_QUEUE_REJECTED,
                                             ErrorKind.MODERATED: CODE_BANNED_PROMPT,
                                             ErrorKind.BAD_REQUEST: CODE_VALIDATION_ERROR,
                                             ErrorKind.JOB_FAILED: CODE_FAILURE}

    def __init__(self, sim: MjproxySimulator, session: aiohttp.ClientSession, receiver: Receiver) -> None:
        self.sim = sim
        self.session = session
        self.receiver = receiver
        self.backend: Backend = self.with_token("rig-token-0123456789")

    def with_token(self, token: str) -> Backend:
        return MjproxyBackend(MjproxyClient(self.session, self.sim.base_url, token, timeout=5.0))

    def answering(self) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # the proxy answers a seed itself: nothing runs for the backend

    def withhold_speed(self, speed: str) -> bool:
        self.sim.speeds.discard(speed)
        return True

    async def finish(self, job_id: str) -> None:
        await self.sim.complete(job_id)

    async def fail(self, job_id: str) -> None:
        await self.sim.fail(job_id)

    async def progress(self, job_id: str, percent: int) -> None:
        await self.sim.progress(job_id, percent)

    def refuse_next(self, kind: ErrorKind) -> None:
        for endpoint in ("submit/imagine", "submit/action"):
            self.sim.inject(endpoint, self._CODE[kind])

    def down(self, is_down: bool) -> None:
        self.sim.set_outage(is_down)


@asynccontextmanager
async def mjproxy_rig() -> AsyncIterator[Rig]:
    receiver = Receiver()
    await receiver.start()
    try:
        async with MjproxySimulator(token="rig-token-0123456789", job_seconds=None) as sim, \
                aiohttp.ClientSession() as session:
            yield MjproxyRig(sim, session, receiver)
    finally:
        await receiver.close()


RIGS: dict[str, Callable[[], AbstractAsyncContextManager[Rig]]] = {"useapi": useapi_rig, "mjproxy": mjproxy_rig}
