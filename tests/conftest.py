"""Shared fixtures: the fake Discord (from its plugin) and the useapi simulator, both on loopback, and the
session's PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.backends.useapi.simulator import Simulator
from tests.harness import SIM_TOKEN

pytest_plugins = ["tests.fakediscord.pytest_plugin", "tests.pgserver"]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The useapi simulator with fast jobs: started, one progress step, completed after 0.4 s."""
    simulator = Simulator(token=SIM_TOKEN, job_seconds=0.4, progress_steps=1)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()
