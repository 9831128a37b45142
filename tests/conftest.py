"""Shared fixtures: the fake Discord (from its plugin) and the useapi simulator, both on loopback; the
session's PostgreSQL server (tests/pgserver.py); and no relay setting from the developer's shell anywhere in the
test process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.backends.useapi.simulator import Simulator
from tests.backend_sims import SIMS, BotSim
from tests.harness import SIM_TOKEN, setting_names

pytest_plugins = ["tests.fakediscord.pytest_plugin", "tests.pgserver"]


@pytest.fixture(autouse=True, scope="session")
def no_settings_from_the_shell() -> Iterator[None]:
    """In-process bots build their settings from what the test gives, but pydantic-settings also reads the
    process environment: take every relay setting out of it for the whole session (put back afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in setting_names():
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The useapi simulator with fast jobs: started, one progress step, completed after 0.4 s."""
    simulator = Simulator(token=SIM_TOKEN, job_seconds=0.4, progress_steps=1)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


@pytest.fixture(params=sorted(SIMS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[BotSim]:
    """Each backend's simulator in turn (mjproxy, useapi), as the end-to-end tests drive it under the real bot."""
    async with SIMS[request.param]() as made:
        yield made
