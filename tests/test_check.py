"""`python -m bot check`: one line per check, exit 0 only when all pass."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from bot.backends.useapi.simulator import Simulator
from tests.harness import SIM_TOKEN, child_env, free_port


def run_check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "check"], cwd=cwd, env=child_env(env), capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


async def test_check_passes_against_the_simulator(sim: Simulator, tmp_path: Path) -> None:
    port = free_port()
    env = {"DISCORD_TOKEN": "t" * 40, "USEAPI_TOKEN": SIM_TOKEN, "USEAPI_BASE_URL": sim.base_url,
           "DATABASE_PATH": str(tmp_path / "relay.db"), "HOST": "127.0.0.1", "PORT": str(port),
           "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    result = await _in_thread(env, tmp_path)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in lines] == ["ok    settings", "ok    database", "ok    useapi",
                                                      "ok    public url"]
    assert SIM_TOKEN not in result.stdout + result.stderr


async def test_check_names_each_failure(sim: Simulator, tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "t" * 40, "USEAPI_TOKEN": "wrong-token-123", "USEAPI_BASE_URL": sim.base_url,
           "DATABASE_PATH": str(tmp_path / "relay.db"), "HOST": "127.0.0.1", "PORT": str(free_port()),
           "PUBLIC_URL": f"http://127.0.0.1:{free_port()}/nowhere"}
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 1
    assert "FAIL  useapi: useapi refused USEAPI_TOKEN (401)" in result.stdout
    assert "FAIL  public url:" in result.stdout
    assert "ok    database" in result.stdout
    assert "wrong-token-123" not in result.stdout + result.stderr


def test_check_names_every_bad_setting(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "t" * 40, "DATABASE_PATH": str(tmp_path / "relay.db"), "LOG_LEVEL": "verbose",
           "PORT": "abc"}
    result = run_check(env, tmp_path)
    assert result.returncode == 2
    assert sorted(result.stdout.splitlines()) == [
        "FAIL  settings: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'verbose'",
        "FAIL  settings: PORT must be a whole number, got 'abc'",
    ]


def test_check_without_token_uses_the_embedded_simulator(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "t" * 40, "DATABASE_PATH": str(tmp_path / "relay.db")}
    result = run_check(env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "simulated" in result.stdout
    assert "PUBLIC_URL is not set" in result.stdout


async def _in_thread(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The simulator runs on this test's event loop, so the blocking subprocess waits in a thread.
    return await asyncio.to_thread(run_check, env, cwd)
