"""The database on disk: created owner-only (it holds the callback secret), tightened when found looser, and a
database that cannot be used stops `python -m bot` and `check` with one line, within seconds."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import FakeDiscord
from tests.harness import SubprocessBot, bot_env, child_env

FILES = ("relay.db", "relay.db-wal", "relay.db-shm", "relay.db.lock")


def modes(folder: Path) -> dict[str, int]:
    return {name: stat.S_IMODE((folder / name).stat().st_mode) for name in FILES if (folder / name).exists()}


async def run_bot(env: dict[str, str], fake: FakeDiscord, log: Path) -> None:
    bot = SubprocessBot(env, log)
    await bot.start(fake)
    try:
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()


async def test_the_database_and_its_companions_are_owner_only(fake_discord: FakeDiscord, sim: Simulator,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "data"
    env = bot_env(fake_discord, sim, folder / "relay.db")
    saved = os.umask(0o022)  # the usual default, under which a plain open() makes 0644
    try:
        await run_bot(env, fake_discord, tmp_path / "first.log")
        # -wal and -shm exist while the bot runs (a clean stop may remove them); the database and lock stay.
        assert modes(folder) == dict.fromkeys(modes(folder), 0o600)
        assert {"relay.db", "relay.db.lock"} <= set(modes(folder))

        # Files left looser (an older release, a restore from backup): tightened at the next start, and said.
        for name in modes(folder):
            (folder / name).chmod(0o644)
        await run_bot(env, fake_discord, tmp_path / "second.log")
        assert modes(folder) == dict.fromkeys(modes(folder), 0o600)
        assert f"{folder / 'relay.db'} was readable by others (0644); now 0600" in (tmp_path / "second.log").read_text()
    finally:
        os.umask(saved)


def bot_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=child_env(env), capture_output=True,
                            text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started


def damaged(tmp_path: Path) -> Path:
    db = tmp_path / "relay.db"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    db.chmod(0o600)  # as the bot made it: only the damage is in question here
    return db


def under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "data").write_text("a file where the folder should be")
    return tmp_path / "data" / "relay.db"


@pytest.mark.parametrize(("make", "problem"), [
    (damaged, "is damaged or is not a SQLite database"),
    (under_a_file, "cannot be created: {parent} is a file, not a folder"),
], ids=["damaged", "parent-is-a-file"])
async def test_an_unusable_database_is_one_line_and_a_quick_exit(fake_discord: FakeDiscord, sim: Simulator,
                                                                 tmp_path: Path, make: object,
                                                                 problem: str) -> None:
    assert callable(make)
    db: Path = make(tmp_path)
    env = {**bot_env(fake_discord, sim, db), "LOG_LEVEL": "WARNING"}
    expected = f"database {db} {problem.format(parent=db.parent)}"

    result, seconds = await asyncio.to_thread(bot_cli, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {expected}"), line
    assert seconds < 10
    assert fake_discord.gateway.identifies == 0

    result, seconds = await asyncio.to_thread(bot_cli, "check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines() if line.startswith("FAIL")] == [
        next(line for line in result.stdout.splitlines() if line.startswith("FAIL  database: "))]
    assert f"FAIL  database: {expected}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert seconds < 20
