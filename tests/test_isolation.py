"""The suite's results do not depend on the developer's machine: a `.env` in the project folder and relay
settings in the shell reach neither the in-process bots nor the `python -m bot` subprocesses.

The proof runs a few tests that each notice such settings (servers, quotas, the backend, callbacks) in a
child pytest, from a copy of the project with a hostile `.env` and with the same settings in its environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT

# Each would change what the chosen tests see: commands refused in the test server, a second job refused,
# the mj-proxy backend instead of useapi, callbacks to a closed port, the bot listening somewhere else.
HOSTILE = {
    "ALLOWED_GUILD_IDS": "1",
    "DISCORD_GUILD_ID": "1",
    "USER_DAILY_QUOTA": "1",
    "USER_MAX_QUEUED": "1",
    "BACKEND": "mjproxy",
    "MJPROXY_URL": "http://127.0.0.1:9/mj",
    "PUBLIC_URL": "http://127.0.0.1:9",
    "POLL_INTERVAL": "600",
    "LOG_LEVEL": "ERROR",
}
# An in-process bot, `python -m bot` as a subprocess, and `python -m bot check`.
CHOSEN = [
    "tests/test_walking_skeleton.py::test_imagine_then_upscale",
    "tests/test_secrets.py::test_no_secret_in_the_log_of_python_m_bot",
    "tests/test_check.py::test_check_without_token_uses_the_embedded_simulator",
    "tests/test_startup.py::test_missing_token_is_one_clear_line",
]


def copy_project(to: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "*.db-wal",
                                    "*.db-shm")
    for folder in ("bot", "cogs", "tests", "bench"):
        shutil.copytree(ROOT / folder, to / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", to / "pyproject.toml")
    return to


@pytest.mark.timeout(180)
def test_a_hostile_env_file_and_shell_change_no_result(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / ".env").write_text("".join(f"{name}={value}\n" for name, value in HOSTILE.items()))
    shell = {**os.environ, **HOSTILE}
    shell.pop("PYTHONPATH", None)  # the copy, first on sys.path as the working folder, is what runs

    # The hostile settings are real: the relay, started in that folder, reads them from the shell and from
    # the file alone.
    probe = "from bot.settings import load_settings; s = load_settings(); print(s.USER_DAILY_QUOTA, s.backend)"
    without = {k: v for k, v in shell.items() if k not in HOSTILE}
    for environment in (shell, without):
        seen = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True,
                              env={**environment, "DISCORD_TOKEN": "t" * 40}, timeout=60, check=False)
        assert seen.stdout.split() == ["1", "mjproxy"], seen.stdout + seen.stderr

    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHOSEN],
                            cwd=project, env=shell, capture_output=True, text=True, timeout=170, check=False,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout, result.stdout[-2000:]
