"""Bots on PostgreSQL (DATABASE_URL): several processes share one database by design, so none takes the SQLite
instance lock, and nothing is made at DATABASE_PATH."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import FakeDiscord
from tests.harness import SubprocessBot, bot_env, eventually


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def gateway_part(port: int) -> str | None:
    """What /healthz says of this process's part in the gateway, or None when it is not healthy."""
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
            if response.status != 200:
                return None
            body = await response.json()
            return str(body.get("gateway"))
    except aiohttp.ClientConnectionError:  # its listener is not up yet
        return None


async def test_two_bots_on_one_postgresql_database_start_and_make_nothing_at_database_path(
        fake_discord: FakeDiscord, sim: Simulator, pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    # The same DATABASE_PATH for both, as two replicas of one deploy have; no lock wait, so a lock taken would
    # stop the second at once (status 3) rather than after 30 s.
    envs = [bot_env(fake_discord, sim, folder / "relay.db", DATABASE_URL=pg_url, INSTANCE_LOCK_WAIT_SECONDS="0")
            for _ in range(2)]
    bots = [SubprocessBot(env, tmp_path / f"bot{n}.log") for n, env in enumerate(envs)]
    try:
        await bots[0].start(fake_discord)
        await bots[1].start(fake_discord)
        ports = [int(env["PORT"]) for env in envs]

        async def settled() -> bool:
            # One holds the gateway and the other stands by, or one of them stopped (a lock refused).
            if any(bot.proc is not None and bot.proc.returncode is not None for bot in bots):
                return True
            parts = sorted([str(await gateway_part(port)) for port in ports])
            return len(fake_discord.gateway.active) == 1 and parts == ["connected", "standby"]

        await eventually(settled, timeout=20)
        for bot in bots:
            assert bot.proc is not None and bot.proc.returncode is None, bot.log_text()
            assert "another instance" not in bot.log_text()
        assert not folder.exists(), f"made at DATABASE_PATH: {names(folder)}"
        assert names(tmp_path) == ["bot0.log", "bot1.log"]
        assert await asyncio.gather(*(bot.terminate() for bot in bots)) == [0, 0]
    finally:
        for bot in bots:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()
    assert fake_discord.spec_errors == []
