"""The files operators deploy with (Dockerfile, .dockerignore, docker-compose.yml, requirements.txt, Procfile,
.python-version) run what the README documents with settings the bot has. These machines have no Docker engine,
so the files are read as Docker, Compose and the Python buildpack read them; the image's health check is run
for real against a running bot's listener."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.backends.useapi.simulator import Simulator
from bot.settings import Settings, load_settings
from tests.fakediscord import FakeDiscord
from tests.harness import ROOT, SubprocessBot, bot_env
from tests.ports import free_port

# Read by Python, pip or the shell in the image, not by the bot.
NOT_SETTINGS = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR",
                          "PIP_DISABLE_PIP_VERSION_CHECK"})
# Read by docker compose from .env, not by the bot; .env.example documents it in a section of its own.
COMPOSE_ONLY = frozenset({"POSTGRES_PASSWORD"})


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str


def stages(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """The Dockerfile's build stages, each a list of instructions (continuation lines joined, comments dropped)."""
    found: list[list[Instruction]] = []
    text = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, even inside a continued instruction
        text = f"{text} {line}" if text else line
        if text.endswith("\\"):
            text = text[:-1].rstrip()
            continue
        name, _, args = text.partition(" ")
        text = ""
        if name.upper() == "FROM":
            found.append([])
        assert found, "the Dockerfile starts with FROM"
        found[-1].append(Instruction(name.upper(), args.strip()))
    return found


def final_stage() -> list[Instruction]:
    return stages()[-1]


def args_of(stage: list[Instruction], name: str) -> list[str]:
    return [i.args for i in stage if i.name == name]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in args_of(stage, "ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def documented() -> set[str]:
    """The names .env.example lists as NAME=..."""
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def smallest_python() -> tuple[int, int]:
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)", project()["requires-python"])
    assert found, project()["requires-python"]
    return int(found[1]), int(found[2])


def test_the_image_runs_python_m_bot_as_a_user_of_its_own() -> None:
    stage = final_stage()
    (cmd,) = args_of(stage, "CMD")
    # Exec form (JSON): python is PID 1 and receives docker stop's SIGTERM itself.
    assert yaml.safe_load(cmd) == ["python", "-m", "bot"]
    (user,) = args_of(stage, "USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    made = " ".join(args_of(stage, "RUN"))
    uid = re.search(rf"useradd\b[^&;]*--uid (\d+)[^&;]*\b{re.escape(user)}\b", made)
    assert uid and int(uid[1]) != 0, made
    assert args_of(stage, "USER") and [i.name for i in stage].index("USER") < [i.name for i in stage].index("CMD")


def test_the_image_is_a_slim_python_the_project_supports_with_nothing_built_left_in_it() -> None:
    build, final = stages()
    bases = [args_of(stage, "FROM")[0].split()[0] for stage in (build, final)]
    versions = {tuple(int(n) for n in re.fullmatch(r"python:(\d+)\.(\d+)-slim", base).groups())  # type: ignore[union-attr]
                for base in bases}
    assert len(versions) == 1, "the virtual environment is built on the Python it runs on"
    (version,) = versions
    assert version >= smallest_python()
    assert (ROOT / ".python-version").read_text().strip() == "{}.{}".format(*version), "the buildpack's Python too"
    # The project is installed in the first stage; the final one takes its environment and nothing else.
    assert "/opt/relay/bin/pip install ." in args_of(build, "RUN")
    assert args_of(final, "COPY") == ["--from=build /opt/relay /opt/relay"]
    run = " ".join(args_of(final, "RUN")).lower()
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in run, f"{tool} in the final stage"
    assert env_of(final)["PATH"].startswith("/opt/relay/bin:")


def test_the_database_is_on_the_volume_and_the_listener_on_the_exposed_port() -> None:
    stage = final_stage()
    env = env_of(stage)
    (volume,) = args_of(stage, "VOLUME")
    assert PurePosixPath(env["DATABASE_PATH"]).parent == PurePosixPath(volume) == PurePosixPath("/data")
    assert args_of(stage, "EXPOSE") == [env["PORT"]] == [str(Settings.model_fields["PORT"].default)]
    settings = set(env) - NOT_SETTINGS
    assert settings <= set(Settings.model_fields), "every ENV the bot reads is a setting"
    assert settings <= documented(), "and documented in .env.example"


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore's patterns, in order: (excludes, regex). `**/` is any folders, `*` any name part."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((not keep, re.compile(regex)))
    return rules


def in_context(path: str) -> bool:
    """Whether the build context has `path`: the last pattern matching it or a folder above it decides."""
    parts = path.split("/")
    excluded = False
    for excludes, regex in dockerignore():
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = excludes
    return not excluded


def test_the_build_context_holds_what_pip_install_needs_and_no_secret() -> None:
    build = stages()[0]
    copied = [source for args in args_of(build, "COPY") for source in args.split()[:-1]]
    needed = ["pyproject.toml", project()["readme"], "bot", "cogs"]
    assert sorted(copied) == sorted(needed)
    for source in copied:
        assert (ROOT / source).exists() and in_context(source), source
    for kept in ("bot/cli.py", "bot/editor/page.html", "cogs/__init__.py"):
        assert (ROOT / kept).exists() and in_context(kept), kept
    for left_out in (".env", ".venv/bin/python", ".git/config", "data/relay.db", "relay.db", "bot/x.db-wal",
                     "bot/__pycache__/cli.cpython-311.pyc", "bot/.env", "tests/test_cli.py", ".env.example"):
        assert not in_context(left_out), left_out


def healthcheck() -> str:
    (check,) = args_of(final_stage(), "HEALTHCHECK")
    command = check.split(" CMD ", 1)[1]
    assert not command.startswith("["), "shell form: $PORT is the container's own"
    return command


def python_on_path(folder: Path) -> dict[str, str]:
    """An environment whose `python` is this test's interpreter, as the image's is on its PATH."""
    folder.mkdir()
    (folder / "python").symlink_to(sys.executable)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


async def test_the_health_check_asks_the_listener_on_port(fake_discord: FakeDiscord, sim: Simulator,
                                                          tmp_path: Path) -> None:
    command = healthcheck()
    assert command.startswith("python ") and "/healthz" in command
    assert "curl" not in command and "wget" not in command, "the slim image has neither"
    env = python_on_path(tmp_path / "bin")
    port = free_port()
    bot = SubprocessBot(bot_env(fake_discord, sim, tmp_path / "relay.db", port=port), tmp_path / "bot.log")

    def check(on: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", command], env={**env, "PORT": str(on)}, capture_output=True, text=True,
                              timeout=20, check=False)

    await bot.start(fake_discord)
    try:
        assert (await asyncio.to_thread(check, port)).returncode == 0
        assert (await asyncio.to_thread(check, free_port())).returncode != 0, "no listener there"
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def substituted(text: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values[m[1]], text)


def test_compose_runs_two_bots_on_its_postgresql() -> None:
    services = compose()["services"]
    db, bot = services["db"], services["bot"]
    assert bot["build"] == "."
    assert bot["env_file"] in (".env", [".env"])
    assert bot["deploy"]["replicas"] >= 2
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "ports" not in bot, "replicas cannot share one host port"
    # DATABASE_URL names the compose database: its service, user, database and password.
    values = {"POSTGRES_PASSWORD": "pw0123456789"}
    url = urlsplit(substituted(bot["environment"]["DATABASE_URL"], values))
    assert url.scheme == "postgresql" and url.hostname == "db" and "db" in services and url.port == 5432
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.path == f"/{db['environment']['POSTGRES_DB']}"
    assert url.password == substituted(db["environment"]["POSTGRES_PASSWORD"], values)
    # The database keeps its files on a volume and says when it is ready.
    volume, _, mount = db["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data" and volume in compose()["volumes"]
    assert db["image"].startswith("postgres:")
    test = db["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and test[1].startswith("pg_isready ")
    assert f"-U {db['environment']['POSTGRES_USER']}" in test[1]


def test_compose_uses_settings_the_bot_has_and_env_example_documents() -> None:
    bot = compose()["services"]["bot"]
    assert set(bot["environment"]) <= set(Settings.model_fields)
    assert set(bot["environment"]) <= documented()
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    assert used == COMPOSE_ONLY and used <= documented(), "compose's own variables are documented too"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    assert documented() - COMPOSE_ONLY == set(Settings.model_fields)


def test_requirements_txt_installs_the_project_alone() -> None:
    # The dependencies are listed once, in pyproject.toml; the buildpack installs the project from this file.
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == ["."]


def test_the_procfile_runs_python_m_bot_as_the_web_process(monkeypatch: pytest.MonkeyPatch) -> None:
    processes = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {name: command.strip() for name, command in processes.items()} == {"web": "python -m bot"}
    # A web process must listen on the PORT the platform gives it.
    monkeypatch.setenv("PORT", "51234")
    monkeypatch.setenv("DISCORD_TOKEN", "t" * 40)
    assert load_settings(env_file=None).PORT == 51234


def test_the_readme_documents_these_files() -> None:
    readme = (ROOT / "README.md").read_text()
    (volume,) = args_of(final_stage(), "VOLUME")
    run = next(line for line in readme.splitlines() if line.strip().startswith("docker run "))
    assert re.search(rf"-v \S+:{re.escape(volume)}\b", run), run
    assert "--env-file .env" in run and run.rstrip().endswith("mj-relay")
    assert "docker build -t mj-relay ." in readme
    assert "docker compose up -d" in readme
    for command in ("python -m bot migrate-db", "python -m bot backup"):
        assert command in readme
