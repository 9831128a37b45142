"""A fake Discord (REST + gateway on loopback) that validates the bot's requests against Discord's spec.

Enable the fixtures with ``pytest_plugins = ["tests.fakediscord.pytest_plugin"]`` in tests/conftest.py.
"""

from .models import (
    ADMIN_ROLE_ID,
    ALICE,
    APPLICATION_ID,
    BOB,
    BOT_ROLE_ID,
    CAROL,
    CHANNEL_ID,
    DEFAULT_FILESIZE_LIMIT,
    EPHEMERAL,
    GALLERY_ID,
    GUILD_ID,
    LOADING,
    MANAGE_GUILD,
    OWNER,
    ROLE_ID,
    FakeGuild,
    FakeUser,
    InteractionRecord,
    RecordedRequest,
)
from .server import DiscordError, FakeDiscord
from .validation import SpecValidator

__all__ = [
    "ADMIN_ROLE_ID",
    "ALICE",
    "APPLICATION_ID",
    "BOB",
    "BOT_ROLE_ID",
    "CAROL",
    "CHANNEL_ID",
    "DEFAULT_FILESIZE_LIMIT",
    "EPHEMERAL",
    "GALLERY_ID",
    "GUILD_ID",
    "LOADING",
    "MANAGE_GUILD",
    "OWNER",
    "ROLE_ID",
    "DiscordError",
    "FakeDiscord",
    "FakeGuild",
    "FakeUser",
    "InteractionRecord",
    "RecordedRequest",
    "SpecValidator",
]
