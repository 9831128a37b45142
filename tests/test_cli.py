"""The command line as an operator types it: `python -m bot [run|check|sync|migrate-db|backup]`, help, usage errors,
and `sync` (migrate-db and backup: tests/test_database_commands.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import FakeDiscord
from tests.harness import InProcessBot, SubprocessBot, bot_env, child_env


def bot_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=child_env(env or {}),
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def test_help_prints_the_usage_and_exits_0(tmp_path: Path) -> None:
    result = bot_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m bot [-h] {run,check,sync,migrate-db,backup}")
    for command in ("run", "check", "sync", "migrate-db", "backup"):
        assert f"\n    {command} " in result.stdout
    assert "exit status:" in result.stdout
    assert result.stderr == ""


def test_check_help_is_the_checks_help_and_checks_nothing(tmp_path: Path) -> None:
    # No DISCORD_TOKEN: a check that ran would fail on the settings.
    result = bot_cli("check", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m bot check [-h]")
    assert "PUBLIC_URL" in result.stdout
    assert "FAIL" not in result.stdout and "ok    " not in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_command_prints_the_usage_and_exits_2(tmp_path: Path) -> None:
    result = bot_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m bot [-h] {run,check,sync,migrate-db,backup}")
    assert "invalid choice: 'serve'" in result.stderr
    assert result.stdout == ""


def test_run_takes_the_same_settings_as_no_command(tmp_path: Path) -> None:
    result = bot_cli("run", cwd=tmp_path, env={"DISCORD_TOKEN": "t" * 40, "PORT": "abc"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: PORT must be a whole number, got 'abc'"]


def command_hashes(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [str(row[0]) for row in conn.execute("SELECT scope FROM command_hashes")]


async def test_sync_forces_a_sync_records_it_and_exits(fake_discord: FakeDiscord, sim: Simulator,
                                                      tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    env = bot_env(fake, sim, db)

    first = await asyncio.to_thread(bot_cli, "sync", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert fake.command_syncs == [None]
    assert {c["name"] for c in fake.commands[None]} >= {"imagine", "button", "jobs", "relay"}
    assert fake.gateway.identifies == 0, "sync needs no gateway"
    assert command_hashes(db) == [f"global:{fake.application_id}"]
    assert "slash commands synced (global)" in first.stderr

    # Unchanged commands: sync still syncs (start-up would not).
    again = await asyncio.to_thread(bot_cli, "sync", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert fake.command_syncs == [None, None]

    # What sync recorded is what the bot compares at start: it does not sync a third time.
    runner = InProcessBot(env)
    await runner.start(fake)
    await runner.stop()
    assert fake.command_syncs == [None, None]

    # Beside a running bot (which holds the instance lock): sync takes no lock, so it does not wait for it.
    running = SubprocessBot(env, tmp_path / "bot.log")
    await running.start(fake)
    try:
        beside = await asyncio.to_thread(bot_cli, "sync", cwd=tmp_path, env={**env, "INSTANCE_LOCK_WAIT_SECONDS": "0"})
        assert beside.returncode == 0, beside.stderr
        assert fake.command_syncs == [None, None, None]
        assert await running.terminate() == 0
    finally:
        if running.proc is not None and running.proc.returncode is None:
            await running.kill()
    assert fake.spec_errors == []


async def test_sync_with_a_refused_token_says_so(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    env = {**bot_env(fake_discord, sim, tmp_path / "relay.db"), "DISCORD_TOKEN": "wrong-token-0123456789"}
    result = await asyncio.to_thread(bot_cli, "sync", cwd=tmp_path, env={**env, "LOG_LEVEL": "WARNING"})
    assert result.returncode == 2
    # At WARNING, that one line is all: no voice warnings, no traceback.
    assert result.stderr.splitlines() == [
        "error: Discord refused DISCORD_TOKEN; check the bot token in the developer portal"]
    assert fake_discord.command_syncs == []
