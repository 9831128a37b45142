"""Shared rigs for the mj-proxy tests: the simulator, a client on a real session, a callback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.backends.mjproxy import MjproxyClient
from bot.backends.mjproxy.simulator import Simulator
from tests.backends.rigs import Receiver

TOKEN = "sim-token-4f2a9c77"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(token=TOKEN, job_seconds=0.3, progress_steps=2) as simulator:
        yield simulator


@pytest.fixture
async def manual_sim() -> AsyncIterator[Simulator]:
    async with Simulator(token=TOKEN, job_seconds=None) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(sim: Simulator, session: aiohttp.ClientSession) -> MjproxyClient:
    return MjproxyClient(session, sim.base_url, TOKEN, timeout=5.0)


@pytest.fixture
def manual_client(manual_sim: Simulator, session: aiohttp.ClientSession) -> MjproxyClient:
    return MjproxyClient(session, manual_sim.base_url, TOKEN, timeout=5.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rig = Receiver()
    await rig.start()
    yield rig
    await rig.close()


def custom_id(task: dict[str, Any], name: str) -> str:
    """The customId of the task's button with this label or emoji."""
    return next(str(b["customId"]) for b in task["buttons"] if (b["label"] or b["emoji"]) == name)


async def done_grid(sim: Simulator, client: MjproxyClient, prompt: str = "a lighthouse", state: str = "r-1") -> str:
    """A finished grid's id (completed by hand in manual mode)."""
    made = await client.imagine(prompt, state=state)
    assert made.result is not None
    await sim.complete(made.result)
    return made.result


async def done_upscale(sim: Simulator, client: MjproxyClient) -> str:
    """A finished U1 upscale's id."""
    grid = await done_grid(sim, client)
    made = await client.action(grid, custom_id(sim.tasks[grid], "U1"), state="r-2")
    assert made.code == 1 and made.result is not None
    await sim.complete(made.result)
    return made.result
