"""Runs the real bot against the fake Discord and the useapi simulator, in-process or as `python -m bot`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import discord
from pydantic import AliasChoices

from bot.client import RelayBot
from bot.settings import Settings
from bot.store import Store, open_store
from tests.fakediscord import FakeDiscord
from tests.ports import free_port

SIM_TOKEN = "sim-token-0123456789"
ROOT = Path(__file__).resolve().parent.parent
# A job's reference at the backend (replyRef, state, the callback path): `<database identity>-<job>`.
REF = re.compile(r"(?:(?P<db>[0-9a-f]{10})-)?(?P<job>[0-9]+)")


def ref_number(ref: object) -> int | None:
    """The local job number a reference names (None when it names none)."""
    match = REF.fullmatch(ref) if isinstance(ref, str) else None
    return int(match["job"]) if match else None


def bare_ref(ref: object) -> object:
    """A reference without its database identity: the job number as text, as tests compare it."""
    number = ref_number(ref)
    return str(number) if number is not None else ref


def database_identity(db_path: Path) -> str:
    """The identity the bot's database got when it was made (its buttons and references carry it)."""
    with closing(sqlite3.connect(db_path)) as db:
        row = db.execute("SELECT database_id FROM relay_state").fetchone()
    return str(row[0])


# What a child Python needs from the test's own environment to start at all. Nothing else is passed on: a
# relay setting in the developer's shell must not change what a test sees.
ESSENTIAL_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def setting_names() -> frozenset[str]:
    """Every environment variable the relay reads: each setting's name and the older names it also answers to."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name)
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
    return frozenset(names)


def child_env(given: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a child process the tests start: the essentials, this checkout on PYTHONPATH
    (ahead of any installed copy), and what the test gives."""
    env = {name: os.environ[name] for name in ESSENTIAL_ENV if name in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env.update(given)
    return env




class Served(Protocol):
    """A backend simulator, as far as the bot's settings go: where it listens."""

    @property
    def base_url(self) -> str: ...


def backend_env(sim: Served) -> dict[str, str]:
    """The settings that point the bot at this simulator: useapi's, or mj-proxy's (its base ends in /mj)."""
    if sim.base_url.endswith("/mj"):
        return {"BACKEND": "mjproxy", "MJPROXY_URL": sim.base_url, "MJPROXY_TOKEN": SIM_TOKEN}
    return {"USEAPI_TOKEN": SIM_TOKEN, "USEAPI_BASE_URL": sim.base_url}


def bot_env(fake: FakeDiscord, sim: Served, db_path: Path, *, callbacks: bool = True, port: int | None = None,
            **extra: Any) -> dict[str, str]:
    """The environment an operator would give the bot, pointed at the fakes."""
    port = port or free_port()
    env = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        **backend_env(sim),
        "DATABASE_PATH": str(db_path),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "POLL_INTERVAL": "0.3",
        "USEAPI_RETRY_SECONDS": "0.3",
        "LOG_LEVEL": "DEBUG",
    }
    if callbacks:
        env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    env.update({key: str(value) for key, value in extra.items()})
    return env


class InProcessBot:
    """The real RelayBot, started with the same resources `python -m bot` opens."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.bot: RelayBot | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._store: Store | None = None
        self._saved_base = discord.http.Route.BASE
        self._saved_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY

    async def start(self, fake: FakeDiscord) -> RelayBot:
        settings = Settings(_env_file=None, **self.env)  # type: ignore[call-arg, arg-type]
        discord.http.Route.BASE = settings.DISCORD_API_BASE
        self._session = aiohttp.ClientSession()
        self._store = await open_store(settings.DATABASE_PATH, settings.database_url)
        self.bot = RelayBot(settings, self._store, self._session, guild_ready_timeout=0.01)
        self._task = asyncio.create_task(self.bot.start(settings.DISCORD_TOKEN.get_secret_value()))
        ready = asyncio.create_task(fake.wait_ready(timeout=15))
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()
            raise RuntimeError("bot stopped before it was ready")
        ready.result()
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._store is not None:
            await self._store.close()
        if self._session is not None:
            await self._session.close()
        discord.http.Route.BASE = self._saved_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved_gateway

    @asynccontextmanager
    async def running(self, fake: FakeDiscord) -> AsyncIterator[InProcessBot]:
        """Started against `fake` for the block and stopped after it; the block fails if Discord saw a body
        outside its spec."""
        await self.start(fake)
        try:
            yield self
            assert fake.spec_errors == []
        finally:
            await self.stop()


class SubprocessBot:
    """`python -m bot` as an operator runs it, with its log captured to a file.

    It runs in the folder of its log, not the project's: the relay reads `.env` from its working folder, and a
    developer's own `.env` in the checkout must not reach the tests.
    """

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, fake: FakeDiscord, timeout: float = 30) -> None:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=str(self.log_path.parent), env=child_env(self.env), stdout=log,
            stderr=log, stdin=asyncio.subprocess.DEVNULL)
        log.close()
        await fake.wait_ready(timeout=timeout)

    async def kill(self) -> None:
        """`kill -9`: no chance to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Wait until `check()` returns something truthy (or raise AssertionError with the last value)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
