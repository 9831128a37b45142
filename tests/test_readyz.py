"""GET /readyz on the bot's listener: 200 while the gateway is connected and the database answers, 503 saying
which is not; an account paused for a human is reported but fails nothing. /healthz stays liveness (always ok)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiohttp

from bot.backends.useapi.simulator import Simulator
from bot.client import RelayBot
from tests.fakediscord import ALICE, FakeDiscord
from tests.harness import InProcessBot, bot_env, eventually


@asynccontextmanager
async def listening_bot(fake: FakeDiscord, sim: Simulator, tmp_path: Path) -> AsyncIterator[tuple[RelayBot, str]]:
    env = bot_env(fake, sim, tmp_path / "relay.db")
    runner = InProcessBot(env)
    bot = await runner.start(fake)
    try:
        # Ready once discord.py has taken in READY and the servers, a moment after the fake sent them.
        await eventually(lambda: _when(probe(env["PUBLIC_URL"]), lambda answer: answer[0] == 200), timeout=10)
        yield bot, env["PUBLIC_URL"]
    finally:
        await runner.stop()


async def probe(root: str, path: str = "/readyz") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(root + path) as response:
        return response.status, await response.json()


async def test_ready_while_connected_and_not_when_the_gateway_is_gone(fake_discord: FakeDiscord, sim: Simulator,
                                                                       tmp_path: Path) -> None:
    fake = fake_discord
    async with listening_bot(fake, sim, tmp_path) as (_, root):
        assert await probe(root) == (200, {"ready": True, "checks": {"gateway": "ok", "database": "ok"},
                                           "failing": [], "paused": None})

        # Discord's gateway goes away and stays away: the bot keeps retrying, and is not ready meanwhile.
        fake.gateway.refusing = True
        await fake.gateway.close()
        _, body = await eventually(lambda: _when(probe(root), lambda answer: answer[0] == 503), timeout=10)
        assert body == {"ready": False, "checks": {"gateway": "not connected to Discord's gateway", "database": "ok"},
                        "failing": ["gateway"], "paused": None}
        alive = await probe(root, "/healthz")
        assert alive == (200, {"ok": True, "gateway": "connecting"}), "still alive: only not ready"

        fake.gateway.refusing = False
        await eventually(lambda: _when(probe(root), lambda answer: answer[0] == 200), timeout=20)


async def test_not_ready_when_the_database_lost_its_tables(fake_discord: FakeDiscord, sim: Simulator,
                                                            tmp_path: Path) -> None:
    async with listening_bot(fake_discord, sim, tmp_path) as (_, root):
        with closing(sqlite3.connect(tmp_path / "relay.db")) as db:
            db.execute("DROP TABLE jobs")
        status, body = await probe(root)
        assert status == 503
        assert body["failing"] == ["database"]
        assert body["checks"] == {"gateway": "ok", "database": "does not answer (no such table: jobs)"}


async def test_not_ready_when_the_database_connection_is_closed(fake_discord: FakeDiscord, sim: Simulator,
                                                                 tmp_path: Path) -> None:
    async with listening_bot(fake_discord, sim, tmp_path) as (bot, root):
        await bot.store.close()
        status, body = await probe(root)
        assert status == 503
        assert body["failing"] == ["database"] and body["checks"]["database"].startswith("does not answer")


async def test_a_paused_account_is_reported_but_still_ready(fake_discord: FakeDiscord, sim: Simulator,
                                                             tmp_path: Path) -> None:
    async with listening_bot(fake_discord, sim, tmp_path) as (bot, root):
        sim.inject("jobs/imagine", 596)
        await fake_discord.slash("imagine", {"prompt": "a held lighthouse"}, user=ALICE)
        await eventually(lambda: bot.relay.paused_reason is not None, timeout=10)
        status, body = await probe(root)
        # A load balancer must not pull every replica for a problem of the one account they share.
        assert status == 200
        assert body["ready"] is True and body["failing"] == []
        assert body["paused"] == bot.relay.paused_reason


async def _when(answer: Any, accept: Any) -> Any:
    found = await answer
    return found if accept(found) else None
