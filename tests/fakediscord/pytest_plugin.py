"""Pytest fixtures for the fake Discord. Enable with ``pytest_plugins = ["tests.fakediscord.pytest_plugin"]``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio

from .server import FakeDiscord


class ErrorCollector(logging.Handler):
    """Collects ERROR records from the `discord` logger.

    discord.py logs exceptions raised in commands, views and modals ("Ignoring exception in ...") instead of
    raising them, so a test that only looks at what Discord received can pass while the bot crashed.
    """

    def __init__(self, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        formatter = logging.Formatter("%(name)s: %(message)s")
        return [formatter.format(record) for record in self.records]

    def assert_clean(self) -> None:
        assert not self.records, "discord.py logged errors:\n" + "\n".join(self.messages)


@pytest.fixture
def discord_errors() -> Iterator[ErrorCollector]:
    """An ErrorCollector attached to the `discord` logger for the duration of the test."""
    collector = ErrorCollector()
    logger = logging.getLogger("discord")
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)


@pytest.fixture
def restore_discord_globals() -> Iterator[None]:
    """Put back `Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY`, which a bot under test repoints.

    Both are process-global class attributes; leaving them aimed at a closed fake breaks later tests.
    """
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield
    finally:
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest_asyncio.fixture
async def fake_discord(restore_discord_globals: None) -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord with the default guild and users; closed (and globals restored) afterwards."""
    async with FakeDiscord() as fake:
        yield fake


@pytest_asyncio.fixture
async def make_fake_discord(
    restore_discord_globals: None,
) -> AsyncIterator[Callable[..., Awaitable[FakeDiscord]]]:
    """A factory for fakes with other options, e.g. ``await make_fake_discord(zlib=True)``."""
    started: list[FakeDiscord] = []

    async def make(*, token: str = "fake-bot-token", validate: bool = True, zlib: bool = False) -> FakeDiscord:
        fake = FakeDiscord(token=token, validate=validate, zlib=zlib)
        await fake.start()
        started.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in reversed(started):
            await fake.close()
