"""Plain data the fake Discord keeps: users, guilds, recorded requests, interactions, and fixed ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

JSON = dict[str, Any]

# Milliseconds since the Unix epoch at 2015-01-01, where Discord snowflakes start counting.
DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions). Only the ones the fake reasons
# about are named; ALL_PERMISSIONS stands for "owner or administrator".
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

# What a fresh server grants @everyone, close to Discord's defaults for a new guild.
EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

# Message flags (https://discord.com/developers/docs/resources/message#message-object-message-flags).
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_VOICE_MESSAGE = 1 << 13
IS_COMPONENTS_V2 = 1 << 15

# Discord's upload limit for a guild without boosts (10 MiB since 2024).
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024

# Fixed ids, so assertions and logs read the same in every run. They are valid snowflakes from 2023,
# older than anything the fake generates, so ordering by id still matches ordering by time.
APPLICATION_ID = 1_100_000_000_000_000_001  # also the bot user's id, as for every modern application
GUILD_ID = 1_100_000_000_000_000_100
CHANNEL_ID = 1_100_000_000_000_000_200
GALLERY_ID = 1_100_000_000_000_000_201
OWNER = 1_100_000_000_000_000_300
ALICE = 1_100_000_000_000_000_301
BOB = 1_100_000_000_000_000_302
CAROL = 1_100_000_000_000_000_303
ADMIN_ROLE_ID = 1_100_000_000_000_000_400
ROLE_ID = 1_100_000_000_000_000_401  # "artists"
BOT_ROLE_ID = 1_100_000_000_000_000_402  # the managed role Discord gives a bot when it joins


class Snowflakes:
    """Time-based, strictly increasing ids, so `created_at` in discord.py is the real creation time."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    # False makes DMs to this user fail with 50007, as when a user closes DMs from server members.
    accepts_dms: bool = True


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    channels: list[int]
    roles: dict[int, int]  # role id -> permission bits; the @everyone role has the guild's id
    members: dict[int, list[int]]  # user id -> role ids (without @everyone)
    filesize_limit: int = DEFAULT_FILESIZE_LIMIT
    role_names: dict[int, str] = field(default_factory=dict)
    channel_names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # discord.py's permission maths assumes @everyone exists; without it every member has no permissions.
        self.roles.setdefault(self.id, EVERYONE_PERMISSIONS)
        self.role_names.setdefault(self.id, "@everyone")

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions: OR of @everyone and the member's roles; owner and admins get all."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        bits = self.roles[self.id]
        for role_id in self.members.get(user_id, []):
            bits |= self.roles.get(role_id, 0)
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits


@dataclass
class RecordedRequest:
    method: str
    path: str  # after /api/v10, without the query string
    template: str | None  # the OpenAPI path template it matched, None for an unserved route
    query: dict[str, str]
    json: Any  # the JSON body, or the parsed payload_json part of a multipart body
    files: list[tuple[str, bytes]]
    headers: dict[str, str]
    status: int = 0  # filled in once answered


class Notifier:
    """Wakes every waiter whenever the fake's state changes; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for(self, check: Callable[[], T | None], timeout: float, what: str, explain: Callable[[], str]) -> T:
        """Return check()'s first non-None result; on timeout raise with `explain()` appended."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = check()
                    if result is not None:
                        return result
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{explain()}") from None


@dataclass(eq=False)
class InteractionRecord:
    """One interaction the fake sent, filled in as the bot answers it."""

    id: int
    token: str
    type: int
    user_id: int
    guild_id: int | None
    channel_id: int
    payload: JSON  # the INTERACTION_CREATE `d` as sent
    sent_at: float
    source_message_id: int | None = None  # the message holding the clicked component
    callbacks: list[JSON] = field(default_factory=list)
    followups: list[JSON] = field(default_factory=list)  # live message dicts, edits apply in place
    modal: JSON | None = None
    original_message_id: int | None = None
    ack_latency: float | None = None
    _notifier: Notifier = field(default_factory=Notifier, repr=False)
    _messages: Mapping[int, JSON] = field(default_factory=dict, repr=False)
    _explain: Callable[[], str] = field(default=lambda: "", repr=False)

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_message(self) -> JSON | None:
        """Latest state of @original: the response message, or for components the clicked message."""
        if self.original_message_id is None:
            return None
        return self._messages.get(self.original_message_id)

    async def wait_response(self, timeout: float = 5) -> JSON:
        """The first callback body the bot posted (it carries its `type`)."""
        return await self._notifier.wait_for(
            lambda: self.callbacks[0] if self.callbacks else None,
            timeout,
            f"a response to interaction {self.id}",
            self._explain,
        )

    async def wait_followup(self, n: int = 1, timeout: float = 5) -> JSON:
        """The n-th (1-based) followup message, in its latest state."""
        return await self._notifier.wait_for(
            lambda: self.followups[n - 1] if len(self.followups) >= n else None,
            timeout,
            f"followup #{n} to interaction {self.id}",
            self._explain,
        )

    async def wait_original(self, predicate: Callable[[JSON], bool], timeout: float = 5) -> JSON:
        """The @original message once it satisfies `predicate` (e.g. a deferred reply got its content)."""

        def check() -> JSON | None:
            message = self.response_message
            return message if message is not None and predicate(message) else None

        return await self._notifier.wait_for(
            check, timeout, f"the original response of interaction {self.id}", self._explain
        )
