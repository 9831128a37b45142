"""Shared rigs for the useapi tests: the simulator, a client on a real session, a callback receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.backends.useapi import UseapiClient
from bot.backends.useapi.simulator import Simulator

TOKEN = "sim-token"


class Receiver:
    """A loopback aiohttp server that stores every callback useapi would POST to replyUrl."""

    def __init__(self, *, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.posts: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/callback/{secret}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/callback/s3cret"

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.posts.append(body)
        self._queue.put_nowait(body)
        return web.Response(status=self.status)

    async def until(self, status: str, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Every callback received up to and including the first one with this status."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                post = await self._queue.get()
                seen.append(post)
                if post.get("status") == status:
                    return seen


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(token=TOKEN, job_seconds=0.2, progress_steps=2)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def manual_sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(token=TOKEN, job_seconds=None)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(sim: Simulator, session: aiohttp.ClientSession) -> UseapiClient:
    return UseapiClient(session, sim.base_url, TOKEN, timeout=5.0)


@pytest.fixture
def manual_client(manual_sim: Simulator, session: aiohttp.ClientSession) -> UseapiClient:
    return UseapiClient(session, manual_sim.base_url, TOKEN, timeout=5.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rig = Receiver()
    await rig.start()
    yield rig
    await rig.close()
