"""A fake Discord on loopback: REST under /api/v10 and a gateway websocket, for driving discord.py bots.

Every JSON body the bot sends is checked against Discord's OpenAPI spec (see validation.py); rejected
bodies are answered the way Discord answers them and listed in `spec_errors`, so tests fail loudly on
payloads the real Discord would refuse.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import logging
import mimetypes
import re
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from aiohttp import BodyPartReader, web

from .gateway import Gateway, covers
from .models import (
    ADMIN_ROLE_ID,
    ALICE,
    APPLICATION_ID,
    ATTACH_FILES,
    BOB,
    BOT_ROLE_ID,
    CAROL,
    CHANNEL_ID,
    DEFAULT_FILESIZE_LIMIT,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    GALLERY_ID,
    GUILD_ID,
    IS_COMPONENTS_V2,
    JSON,
    LOADING,
    MANAGE_GUILD,
    OWNER,
    ROLE_ID,
    SEND_MESSAGES,
    SUPPRESS_EMBEDS,
    VIEW_CHANNEL,
    FakeGuild,
    FakeUser,
    InteractionRecord,
    Notifier,
    RecordedRequest,
    Snowflakes,
    T,
)
from .validation import (
    SENDABLE_FLAGS,
    Operation,
    Problem,
    SpecValidator,
    form_errors,
    message_limits,
    modal_limits,
)

log = logging.getLogger(__name__)

# Gateway intents the fake honours when deciding who receives message events.
GUILD_MEMBERS_INTENT = 1 << 1
GUILD_MESSAGES_INTENT = 1 << 9
GUILD_MESSAGE_REACTIONS_INTENT = 1 << 10
DIRECT_MESSAGES_INTENT = 1 << 12

# Interaction types and the callback types Discord accepts for each.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
ALLOWED_CALLBACKS: dict[int, frozenset[int]] = {
    APPLICATION_COMMAND: frozenset({4, 5, 9}),
    MESSAGE_COMPONENT: frozenset({4, 5, 6, 7, 9}),
    AUTOCOMPLETE: frozenset({8}),
    MODAL_SUBMIT: frozenset({4, 5, 6, 7}),
}

# Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN = 1, 2, 3, 4, 5
USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 6, 7, 8, 9, 10, 11

SELECT_COMPONENT_TYPES = frozenset({3, 5, 6, 7, 8})
JOINED_AT = "2024-01-01T00:00:00.000000+00:00"

# How long a simulated user takes before acting on a message. discord.py registers a view only after it has
# processed the HTTP answer that created the message, which the fake cannot observe; no human is faster.
REACTION_TIME = 0.01


class DiscordError(Exception):
    """An error answer in Discord's shape: HTTP status plus a JSON error code and message."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


@dataclass
class UploadedFile:
    field: str  # the form field, "files[N]"
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class Call:
    """One parsed REST request as a handler sees it."""

    record: RecordedRequest
    operation: Operation
    params: dict[str, str]
    body: Any
    files: list[UploadedFile]

    def snowflake(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise DiscordError(404, 0, "404: Not Found") from None


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: JSON
    headers: dict[str, str]
    remaining: int


Reply = tuple[int, Any]
Handler = Callable[[Call], Awaitable[Reply]]


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim and treats anything else
    # (aiohttp's json_response adds "; charset=utf-8") as text, which breaks login.
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


class FakeDiscord:
    """Discord's REST API and gateway for one bot, with a default guild, users and helpers to drive it."""

    APPLICATION_ID: ClassVar[int] = APPLICATION_ID
    GUILD_ID: ClassVar[int] = GUILD_ID
    CHANNEL_ID: ClassVar[int] = CHANNEL_ID
    GALLERY_ID: ClassVar[int] = GALLERY_ID
    OWNER: ClassVar[int] = OWNER
    ALICE: ClassVar[int] = ALICE
    BOB: ClassVar[int] = BOB
    CAROL: ClassVar[int] = CAROL
    ROLE_ID: ClassVar[int] = ROLE_ID
    ADMIN_ROLE_ID: ClassVar[int] = ADMIN_ROLE_ID
    BOT_ROLE_ID: ClassVar[int] = BOT_ROLE_ID

    def __init__(self, *, token: str = "fake-bot-token", validate: bool = True, zlib: bool = False) -> None:
        self.token = token
        self.validate = validate
        self.snowflake = Snowflakes()
        self.application_id = APPLICATION_ID
        self.bot_user = FakeUser(APPLICATION_ID, "mj-relay", bot=True)
        self.users: dict[int, FakeUser] = {
            u.id: u
            for u in (
                self.bot_user,
                FakeUser(OWNER, "owner"),
                FakeUser(ALICE, "alice"),
                FakeUser(BOB, "bob"),
                FakeUser(CAROL, "carol"),
            )
        }
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, JSON] = {}  # id -> {"guild_id": int | None, "name", "type", "position", ...}
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id

        self.requests: list[RecordedRequest] = []
        self.spec_errors: list[str] = []
        # Problems in the fake's own answers, checked against the spec's response schemas.
        self.response_errors: list[str] = []
        self.messages: dict[int, JSON] = {}
        self.deleted_messages: dict[int, JSON] = {}
        self.attachments: dict[str, bytes] = {}  # attachment url -> content
        self.reactions: dict[tuple[int, str], set[int]] = {}  # (message, emoji) -> who reacted
        self.commands: dict[int | None, list[JSON]] = {}
        self.command_syncs: list[int | None] = []  # the scope of every bulk overwrite, in order
        self._inferred_command_ids: dict[str, str] = {}
        self.dms: list[JSON] = []
        self.interactions: dict[str, InteractionRecord] = {}  # by token
        self._ephemeral_owner: dict[int, int] = {}  # ephemeral message id -> the only user who sees it

        self._failures: list[_Failure] = []
        self._notifier = Notifier()
        self._tasks: set[asyncio.Task[None]] = set()
        self.spec = SpecValidator.shared()
        self.gateway = Gateway(self, zlib_stream=zlib)
        self.recommended_shards = 1  # what GET /gateway/bot says
        self._runner: web.AppRunner | None = None
        self.root = ""
        self.api_base = ""
        self._handlers: dict[tuple[str, str], Handler] = self._route_table()

        self.add_guild(
            FakeGuild(
                id=GUILD_ID,
                name="Test Guild",
                owner_id=OWNER,
                channels=[CHANNEL_ID, GALLERY_ID],
                roles={
                    GUILD_ID: EVERYONE_PERMISSIONS,
                    ADMIN_ROLE_ID: MANAGE_GUILD,
                    ROLE_ID: 0,
                    BOT_ROLE_ID: EVERYONE_PERMISSIONS,
                },
                members={OWNER: [ADMIN_ROLE_ID], ALICE: [], BOB: [], CAROL: [ROLE_ID]},
                role_names={ADMIN_ROLE_ID: "admins", ROLE_ID: "artists", BOT_ROLE_ID: "mj-relay"},
                channel_names={CHANNEL_ID: "general", GALLERY_ID: "gallery"},
            )
        )

    # --- world setup -------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        id: int | None = None,
        guild_id: int | None = GUILD_ID,
        roles: list[int] | None = None,
        bot: bool = False,
    ) -> FakeUser:
        user = FakeUser(id or self.snowflake(), username, bot=bot)
        self.users[user.id] = user
        if guild_id is not None:
            self.guilds[guild_id].members[user.id] = list(roles or [])
        return user

    def add_guild(self, guild: FakeGuild) -> FakeGuild:
        """Register a guild (its channels become text channels); announced live if the bot is connected."""
        guild.members.setdefault(self.bot_user.id, [BOT_ROLE_ID] if BOT_ROLE_ID in guild.roles else [])
        guild.members.setdefault(guild.owner_id, [])
        for user_id in guild.members:
            self.users.setdefault(user_id, FakeUser(user_id, f"user{user_id}"))
        for position, channel_id in enumerate(guild.channels):
            self.channels[channel_id] = {
                "guild_id": guild.id,
                "type": 0,
                "name": guild.channel_names.get(channel_id, f"channel-{position}"),
                "position": position,
            }
        self.guilds[guild.id] = guild
        for session in self.gateway.active:
            if not covers(session.shard, guild.id):
                continue
            payload = self._guild_create(guild, session.intents)
            # A guild joined after READY comes without `unavailable`, which discord.py reads as a join.
            del payload["unavailable"]
            event = {"op": 0, "t": "GUILD_CREATE", "d": payload}
            self._spawn(session.send(event))
        return guild

    def guild_of(self, channel_id: int) -> FakeGuild | None:
        channel = self.channels.get(channel_id)
        return None if channel is None or channel["guild_id"] is None else self.guilds[channel["guild_id"]]

    def dm_channel_id(self, user_id: int) -> int:
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.snowflake()
            self._dm_channels[user_id] = channel_id
            self.channels[channel_id] = {"guild_id": None, "type": 1, "recipient": user_id}
        return channel_id

    @property
    def served(self) -> set[tuple[str, str]]:
        """Every (method, path template) this fake answers; each must exist in the spec subset."""
        return set(self._handlers)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._serve_attachment)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle_api)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # A short shutdown timeout: close() has already closed the websockets, nothing is worth waiting for.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.root = f"http://{bound_host}:{bound_port}"
        self.api_base = f"{self.root}/api/v10"
        self.gateway.url = f"ws://{bound_host}:{bound_port}/gateway"

    async def close(self) -> None:
        await self.gateway.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- waiting -----------------------------------------------------------------------------------

    def _explain(self) -> str:
        # A timeout is usually a rejected body or a crashed handler; say which, so the failure reads itself.
        lines = [f"\n  spec error: {e}" for e in self.spec_errors[-5:]]
        lines += [f"\n  request: {r.method} {r.path} -> {r.status}" for r in self.requests[-5:]]
        return "".join(lines)

    async def _wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        return await self._notifier.wait_for(check, timeout, what, self._explain)

    def gateway_changed(self) -> None:
        self._notifier.notify()

    async def wait_ready(self, timeout: float = 10) -> None:
        """Until the bot has IDENTIFYed and received READY and every GUILD_CREATE."""
        await self._wait(lambda: True if self.gateway.active else None, timeout, "the bot to connect")

    async def reconnect_gateway(self, timeout: float = 10) -> None:
        """Send op 7 RECONNECT and wait for the bot to RESUME on a new connection."""
        resumes = self.gateway.resumes
        await self.gateway.reconnect()
        await self._wait(
            lambda: True if self.gateway.resumes > resumes and self.gateway.active else None,
            timeout,
            "the bot to resume",
        )

    async def wait_for_message(self, predicate: Callable[[JSON], bool], timeout: float = 10) -> JSON:
        """The first message, already there or still to come, whose latest state matches `predicate`."""

        def check() -> JSON | None:
            return next((m for m in self.messages.values() if predicate(m)), None)

        return await self._wait(check, timeout, "a matching message")

    def attachment_bytes(self, attachment: Mapping[str, Any] | str) -> bytes:
        """The uploaded content behind an attachment object (or its url)."""
        url = attachment if isinstance(attachment, str) else str(attachment["url"])
        return self.attachments[url]

    def seed_message(self, message: JSON) -> None:
        """Know a message posted before this fake started (an older run's card), as Discord keeps messages."""
        self.messages[int(message["id"])] = copy.deepcopy(message)

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """Messages in a channel, oldest first, without deleted ones (ephemeral ones included)."""
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    # --- moderator / failure injection --------------------------------------------------------------

    def delete_message(self, channel_id: int, message_id: int) -> None:
        """Delete a message as a moderator would; the bot gets MESSAGE_DELETE and later edits get 10008."""
        message = self.messages.get(message_id)
        if message is None or int(message["channel_id"]) != channel_id:
            raise AssertionError(f"no message {message_id} in channel {channel_id}")
        self._remove_message(message_id)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: JSON | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests matching `method` ("*" for any) and `path_regex` with an error.

        Defaults follow Discord: 403 is Missing Permissions (50013); 429 carries `retry_after` and a `Via`
        header so discord.py retries it rather than treating it as a Cloudflare ban. discord.py itself
        retries 500/502/504 with 1 s, 3 s, ... sleeps; 503 is not retried.
        """
        default_headers: dict[str, str] = {}
        if body is None:
            if status == 403:
                body = {"message": "Missing Permissions", "code": 50013}
            elif status == 429:
                body = {"message": "You are being rate limited.", "retry_after": 0.01, "global": False}
            elif status == 404:
                body = {"message": "Unknown Message", "code": 10008}
            else:
                body = {"message": f"{status}: {HTTPStatus(status).phrase}", "code": 0}
        if status == 429:
            default_headers = {"Via": "1.1 google", "Retry-After": str(body.get("retry_after", 1))}
        self._failures.append(
            _Failure(
                method=method.upper(),
                path=re.compile(path_regex),
                status=status,
                body=body,
                headers={**default_headers, **(headers or {})},
                remaining=times,
            )
        )

    # --- payloads ----------------------------------------------------------------------------------

    def user_payload(self, user_id: int) -> JSON:
        user = self.users[user_id]
        payload: JSON = {
            "id": str(user.id),
            "username": user.username,
            "discriminator": "0",
            "global_name": None if user.bot else user.username.title(),
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
        }
        if user.bot:
            payload["bot"] = True
        return payload

    def role_payload(self, guild: FakeGuild, role_id: int, position: int) -> JSON:
        return {
            "id": str(role_id),
            "name": guild.role_names.get(role_id, f"role-{position}"),
            "permissions": str(guild.roles[role_id]),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": role_id == BOT_ROLE_ID,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    def member_payload(self, guild: FakeGuild, user_id: int, *, with_user: bool = True) -> JSON:
        payload: JSON = {
            "roles": [str(r) for r in guild.members.get(user_id, [])],
            "joined_at": JOINED_AT,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "banner": None,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
            "deaf": False,
            "mute": False,
        }
        if with_user:
            payload["user"] = self.user_payload(user_id)
        return payload

    def channel_payload(self, channel_id: int, *, for_user: int | None = None) -> JSON:
        channel = self.channels[channel_id]
        if channel["guild_id"] is None:
            return {
                "id": str(channel_id),
                "type": 1,
                "flags": 0,
                "last_message_id": None,
                "recipients": [self.user_payload(channel["recipient"])],
            }
        payload: JSON = {
            "id": str(channel_id),
            "type": channel["type"],
            "guild_id": str(channel["guild_id"]),
            "name": channel["name"],
            "position": channel["position"],
            "permission_overwrites": [],
            "flags": 0,
            "nsfw": False,
            "topic": None,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        if for_user is not None:
            payload["permissions"] = str(self.guilds[channel["guild_id"]].permissions_for(for_user))
        return payload

    def _guild_payload(self, guild: FakeGuild) -> JSON:
        """A guild as GET /guilds/{id} returns it."""
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "description": None,
            "home_header": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "features": [],
            "owner_id": str(guild.owner_id),
            "application_id": None,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "roles": [self.role_payload(guild, r, i) for i, r in enumerate(guild.roles)],
            "default_message_notifications": 0,
            "mfa_level": 0,
            "explicit_content_filter": 0,
            "max_presences": None,
            "max_members": 500000,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "rules_channel_id": None,
            "safety_alerts_channel_id": None,
            "public_updates_channel_id": None,
            "premium_progress_bar_enabled": False,
            "nsfw": False,
            "nsfw_level": 0,
            "emojis": [],
            "stickers": [],
            "incidents_data": None,
        }

    def _guild_create(self, guild: FakeGuild, intents: int = GUILD_MEMBERS_INTENT) -> JSON:
        # Without the privileged members intent Discord sends only the bot's own member.
        members = list(guild.members) if intents & GUILD_MEMBERS_INTENT else [self.bot_user.id]
        return {
            **self._guild_payload(guild),
            "unavailable": False,
            "large": False,
            "joined_at": JOINED_AT,
            "member_count": len(guild.members),
            "channels": [self.channel_payload(c) for c in guild.channels],
            "members": [self.member_payload(guild, u) for u in members],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # GatewayHost protocol

    def ready_payload(self, session_id: str, resume_url: str, shard: tuple[int, int] | None = None) -> JSON:
        ready: JSON = {
            "v": 10,
            "user": {**self.user_payload(self.bot_user.id), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds if covers(shard, g)],
            "session_id": session_id,
            "resume_gateway_url": resume_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "_trace": ["fake-discord"],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        return ready

    def guild_create_payloads(self, intents: int, shard: tuple[int, int] | None = None) -> list[JSON]:
        return [self._guild_create(g, intents) for g in self.guilds.values() if covers(shard, g.id)]

    def member_chunks(self, request: JSON) -> list[JSON]:
        guild_ids = request.get("guild_id")
        ids: list[Any] = guild_ids if isinstance(guild_ids, list) else [guild_ids]
        chunks = []
        for guild_id in ids:
            guild = self.guilds.get(int(guild_id))
            if guild is None:
                continue
            wanted = request.get("user_ids")
            members = [u for u in guild.members if wanted is None or str(u) in {str(w) for w in wanted}]
            chunk: JSON = {
                "guild_id": str(guild.id),
                "members": [self.member_payload(guild, u) for u in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if request.get("nonce") is not None:
                chunk["nonce"] = request["nonce"]
            chunks.append(chunk)
        return chunks

    # --- HTTP plumbing -----------------------------------------------------------------------------

    async def _serve_attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(str(request.url.with_query(None)))
        if data is None:
            return web.Response(status=404, text="Not Found")
        content_type = mimetypes.guess_type(request.match_info["filename"])[0] or "application/octet-stream"
        return web.Response(body=data, content_type=content_type)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self.spec_errors.append(f"{request.method} {request.path}: unserved route (outside /api/v10)")
        self._notifier.notify()
        return _json_response(404, {"message": "404: Not Found", "code": 0})

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        record = RecordedRequest(
            method=request.method,
            path=path,
            template=None,
            query=dict(request.query),
            json=None,
            files=[],
            headers=dict(request.headers),
        )
        self.requests.append(record)
        try:
            status, body, headers = await self._respond(request, record)
        except DiscordError as error:
            status, body, headers = error.status, error.body(), {}
        record.status = status
        response = (
            web.Response(status=status, headers=headers) if body is None else _json_response(status, body, headers)
        )
        # Waiters wake only once the answer is on the wire: a test that saw a message appear must not act on
        # it (click it) before discord.py has even received the response that created it.
        await response.prepare(request)
        await response.write_eof()
        self._notifier.notify()
        return response

    async def _respond(self, request: web.Request, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        matched = self.spec.match(record.method, record.path)
        body, files = await self._read_body(request)
        record.json = body
        record.files = [(f.filename, f.data) for f in files]
        if matched is None:
            self.spec_errors.append(f"{record.method} {record.path}: unserved route")
            return 404, {"message": "404: Not Found", "code": 0}, {}
        operation, params = matched
        record.template = operation.template

        # Interaction callbacks and webhooks are authenticated by their token, like on Discord.
        token_authenticated = operation.template.startswith(("/interactions/", "/webhooks/"))
        if not token_authenticated and request.headers.get("Authorization") != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, {}

        for failure in self._failures:
            if failure.remaining > 0 and failure.method in ("*", record.method) and failure.path.search(record.path):
                failure.remaining -= 1
                return failure.status, failure.body, failure.headers

        call = Call(record=record, operation=operation, params=params, body=body, files=files)
        limit = self._upload_limit(call)
        for upload in files:
            if len(upload.data) > limit:
                raise DiscordError(413, 40005, "Request entity too large")

        if self.validate:
            # dict.fromkeys: the spec and Discord's extra limits can both flag one field the same way.
            problems = list(dict.fromkeys(self.spec.validate_request(operation, body) + self._discord_limits(call)))
            if problems:
                for problem in problems:
                    self.spec_errors.append(f"{record.method} {record.path}: {problem}")
                raise DiscordError(400, 50035, "Invalid Form Body", form_errors(problems))

        handler = self._handlers[(operation.method, operation.template)]
        status, reply = await handler(call)
        if self.validate and reply is not None and 200 <= status < 300:
            for problem in self.spec.validate_response(operation, status, reply):
                self.response_errors.append(f"{record.method} {operation.template} -> {status}: {problem}")
        return status, reply, {}

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[UploadedFile] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read(decode=False)
                if part.name == "payload_json":
                    payload = self._parse_json(data)
                else:
                    files.append(
                        UploadedFile(
                            part.name or "", part.filename or "", bytes(data), part.headers.get("Content-Type")
                        )
                    )
            return payload, files
        raw = await request.read()
        return (self._parse_json(raw) if raw else None), []

    @staticmethod
    def _parse_json(raw: bytes | bytearray) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _upload_limit(self, call: Call) -> int:
        if "channel_id" in call.params:
            guild = self.guild_of(call.snowflake("channel_id"))
            return guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT
        token = call.params.get("interaction_token") or call.params.get("webhook_token")
        record = self.interactions.get(token or "")
        if record is not None:
            return int(record.payload["attachment_size_limit"])
        return DEFAULT_FILESIZE_LIMIT

    def _discord_limits(self, call: Call) -> list[Problem]:
        """Limits Discord enforces beyond the schema, for the bodies that carry a message or a modal."""
        body = call.body
        if not isinstance(body, Mapping):
            return []
        if call.operation.template.endswith("/callback"):
            data = body.get("data")
            if not isinstance(data, Mapping):
                return []
            if body.get("type") == 9:
                return modal_limits(data)
            if body.get("type") in (4, 7):
                return message_limits(data, ("data",))
            return []
        if call.operation.method in ("post", "patch") and (
            "/messages" in call.operation.template or call.operation.template.startswith("/webhooks/")
        ):
            return message_limits(body)
        return []

    def _route_table(self) -> dict[tuple[str, str], Handler]:
        app = "/applications/{application_id}"
        message = "/channels/{channel_id}/messages/{message_id}"
        webhook = "/webhooks/{webhook_id}/{webhook_token}"
        return {
            ("get", "/users/@me"): self._get_me,
            ("get", "/users/@me/guilds"): self._get_my_guilds,
            ("get", "/oauth2/applications/@me"): self._get_application,
            ("get", "/gateway/bot"): self._get_gateway_bot,
            ("get", f"{app}/commands"): self._get_commands,
            ("put", f"{app}/commands"): self._put_commands,
            ("get", f"{app}/guilds/{{guild_id}}/commands"): self._get_commands,
            ("put", f"{app}/guilds/{{guild_id}}/commands"): self._put_commands,
            ("get", "/channels/{channel_id}"): self._get_channel,
            ("post", "/channels/{channel_id}/messages"): self._post_message,
            ("get", message): self._get_message,
            ("patch", message): self._patch_message,
            ("delete", message): self._delete_message,
            ("put", f"{message}/reactions/{{emoji_name}}/@me"): self._add_own_reaction,
            ("delete", f"{message}/reactions/{{emoji_name}}/@me"): self._remove_own_reaction,
            ("delete", f"{message}/reactions/{{emoji_name}}/{{user_id}}"): self._remove_reaction,
            ("post", "/channels/{channel_id}/typing"): self._typing,
            ("get", "/guilds/{guild_id}"): self._get_guild,
            ("get", "/guilds/{guild_id}/channels"): self._get_guild_channels,
            ("get", "/guilds/{guild_id}/members/{user_id}"): self._get_member,
            ("post", "/users/@me/channels"): self._create_dm,
            ("get", "/users/{user_id}"): self._get_user,
            ("post", "/interactions/{interaction_id}/{interaction_token}/callback"): self._callback,
            ("post", webhook): self._followup,
            ("get", f"{webhook}/messages/@original"): self._get_webhook_message,
            ("patch", f"{webhook}/messages/@original"): self._patch_webhook_message,
            ("delete", f"{webhook}/messages/@original"): self._delete_webhook_message,
            ("get", f"{webhook}/messages/{{message_id}}"): self._get_webhook_message,
            ("patch", f"{webhook}/messages/{{message_id}}"): self._patch_webhook_message,
            ("delete", f"{webhook}/messages/{{message_id}}"): self._delete_webhook_message,
        }

    # --- REST handlers: identity and commands --------------------------------------------------------

    async def _get_me(self, call: Call) -> Reply:
        return 200, {**self.user_payload(self.bot_user.id), "mfa_enabled": False, "locale": "en-US", "verified": True}

    async def _get_my_guilds(self, call: Call) -> Reply:
        """The servers the bot is in, by id, in pages (`after`, `limit` up to 200) as Discord lists them."""
        after = int(call.record.query.get("after") or 0)
        limit = int(call.record.query.get("limit") or 200)
        mine = sorted((g for g in self.guilds.values() if self.bot_user.id in g.members and g.id > after),
                      key=lambda g: g.id)
        return 200, [
            {
                "id": str(guild.id),
                "name": guild.name,
                "icon": None,
                "banner": None,
                "owner": guild.owner_id == self.bot_user.id,
                "permissions": str(guild.permissions_for(self.bot_user.id)),
                "features": [],
            }
            for guild in mine[:limit]
        ]

    async def _get_application(self, call: Call) -> Reply:
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "type": None,
            "bot": self.user_payload(self.bot_user.id),
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "flags_new": "0",
            "redirect_uris": [],
            # Non-null would make discord.py warn that interactions go to an HTTP endpoint, not the gateway.
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "owner": self.user_payload(OWNER),
            "approximate_guild_count": len(self.guilds),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "team": None,
            "eligible_oauth2_scopes": [],
            "rpc_origins": [],
        }

    async def _get_gateway_bot(self, call: Call) -> Reply:
        return 200, {
            "url": self.gateway.url,
            "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1},
        }

    def _scope(self, call: Call) -> int | None:
        if call.snowflake("application_id") != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        return call.snowflake("guild_id") if "guild_id" in call.params else None

    async def _get_commands(self, call: Call) -> Reply:
        return 200, self.commands.get(self._scope(call), [])

    async def _put_commands(self, call: Call) -> Reply:
        scope = self._scope(call)
        previous = {(c["name"], c["type"]): c["id"] for c in self.commands.get(scope, [])}
        synced = []
        for command in call.body or []:
            kind = command.get("type") or 1
            permissions = command.get("default_member_permissions")
            echoed = {
                **{k: v for k, v in command.items() if v is not None},
                # Discord keeps a command's id across overwrites when name and type are unchanged.
                "id": previous.get((command["name"], kind)) or str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "type": kind,
                "description": command.get("description") or "",
                "default_member_permissions": None if permissions is None else str(permissions),
                "dm_permission": bool(command.get("dm_permission", True)),
                "nsfw": bool(command.get("nsfw", False)),
            }
            if scope is not None:
                echoed["guild_id"] = str(scope)
            synced.append(echoed)
        self.commands[scope] = synced
        self.command_syncs.append(scope)
        return 200, synced

    # --- REST handlers: guilds and channels ---------------------------------------------------------

    def _guild(self, call: Call) -> FakeGuild:
        guild = self.guilds.get(call.snowflake("guild_id"))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    def _channel(self, call: Call) -> int:
        channel_id = call.snowflake("channel_id")
        if channel_id not in self.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    async def _get_channel(self, call: Call) -> Reply:
        return 200, self.channel_payload(self._channel(call))

    async def _get_guild(self, call: Call) -> Reply:
        guild = self._guild(call)
        if self.bot_user.id not in guild.members:
            # What Discord answers a bot about a server it is not in (or was removed from).
            raise DiscordError(403, 50001, "Missing Access")
        return 200, self._guild_payload(guild)

    async def _get_guild_channels(self, call: Call) -> Reply:
        return 200, [self.channel_payload(c) for c in self._guild(call).channels]

    async def _get_member(self, call: Call) -> Reply:
        guild = self._guild(call)
        user_id = call.snowflake("user_id")
        if user_id not in guild.members:
            raise DiscordError(404, 10007, "Unknown Member")
        return 200, self.member_payload(guild, user_id)

    async def _create_dm(self, call: Call) -> Reply:
        recipient = int(call.body.get("recipient_id") or 0)
        if recipient not in self.users:
            raise DiscordError(400, 50035, "Invalid Form Body")
        return 200, self.channel_payload(self.dm_channel_id(recipient))

    async def _get_user(self, call: Call) -> Reply:
        user_id = call.snowflake("user_id")
        if user_id not in self.users:
            raise DiscordError(404, 10013, "Unknown User")
        return 200, self.user_payload(user_id)

    async def _typing(self, call: Call) -> Reply:
        self._channel(call)
        return 204, None

    # --- REST handlers: channel messages -------------------------------------------------------------

    def _stored(self, channel_id: int, message_id: int) -> JSON:
        message = self.messages.get(message_id)
        # Ephemeral messages exist only for their user; the channel endpoints never see them.
        if message is None or int(message["channel_id"]) != channel_id or message["flags"] & EPHEMERAL:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _check_bot_can_send(self, channel_id: int, with_files: bool) -> None:
        channel = self.channels[channel_id]
        guild = self.guild_of(channel_id)
        if guild is None:
            recipient = self.users[channel["recipient"]]
            if not recipient.accepts_dms or recipient.bot:
                raise DiscordError(403, 50007, "Cannot send messages to this user")
            return
        permissions = guild.permissions_for(self.bot_user.id)
        needed = VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if with_files else 0)
        if permissions & needed != needed:
            raise DiscordError(403, 50013, "Missing Permissions")

    async def _post_message(self, call: Call) -> Reply:
        channel_id = self._channel(call)
        self._check_bot_can_send(channel_id, bool(call.files))
        body = call.body or {}
        if not any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids", "poll")) and not call.files:
            raise DiscordError(400, 50006, "Cannot send an empty message")
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            # As Discord does: a message by the same author with the same nonce in the last few minutes is
            # returned instead of a new one being created.
            for earlier in self.messages.values():
                if (earlier.get("nonce") == body["nonce"] and int(earlier["author"]["id"]) == self.bot_user.id
                        and int(earlier["id"]) not in self.deleted_messages):
                    return 200, earlier
        message = self._new_message(channel_id, body, call.files)
        await self._store_new(message)
        return 200, message

    async def _get_message(self, call: Call) -> Reply:
        return 200, self._stored(self._channel(call), call.snowflake("message_id"))

    async def _patch_message(self, call: Call) -> Reply:
        message = self._stored(self._channel(call), call.snowflake("message_id"))
        if int(message["author"]["id"]) != self.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        await self._edit(message, call.body or {}, call.files)
        return 200, message

    async def _delete_message(self, call: Call) -> Reply:
        message = self._stored(self._channel(call), call.snowflake("message_id"))
        self._remove_message(int(message["id"]))
        return 204, None

    # --- REST handlers: interactions ----------------------------------------------------------------

    # --- REST handlers: reactions ------------------------------------------------------------------

    def _reactors(self, call: Call) -> set[int]:
        message = self._stored(self._channel(call), int(call.params["message_id"]))
        emoji = urllib.parse.unquote(call.params["emoji_name"])
        return self.reactions.setdefault((int(message["id"]), emoji), set())

    async def _add_own_reaction(self, call: Call) -> Reply:
        self._reactors(call).add(self.bot_user.id)
        return 204, None

    async def _remove_own_reaction(self, call: Call) -> Reply:
        self._reactors(call).discard(self.bot_user.id)
        return 204, None

    async def _remove_reaction(self, call: Call) -> Reply:
        self._reactors(call).discard(int(call.params["user_id"]))
        return 204, None

    async def react(self, message_id: int, emoji: str, *, user: int) -> None:
        """A member adds a reaction to a stored message: MESSAGE_REACTION_ADD goes to the bot, as Discord sends it."""
        message, guild_id, channel_id = self._message_context(message_id, user)
        self.reactions.setdefault((message_id, emoji), set()).add(user)
        event: JSON = {"user_id": str(user), "channel_id": str(channel_id), "message_id": str(message_id),
                       "emoji": {"id": None, "name": emoji}, "type": 0, "burst": False,
                       "message_author_id": message["author"]["id"]}
        if guild_id is not None:
            event["guild_id"] = str(guild_id)
            event["member"] = self.member_payload(self.guilds[guild_id], user)
        await self.gateway.dispatch("MESSAGE_REACTION_ADD", event, intent=GUILD_MESSAGE_REACTIONS_INTENT)

    async def _callback(self, call: Call) -> Reply:
        record = self.interactions.get(call.params["interaction_token"])
        if record is None or str(record.id) != call.params["interaction_id"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if record.callbacks:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body: JSON = call.body
        kind = int(body["type"])
        if kind not in ALLOWED_CALLBACKS.get(record.type, frozenset()):
            self.spec_errors.append(
                f"POST {call.record.path}: callback type {kind} is not valid for interaction type {record.type}"
            )
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "type": {
                        "_errors": [
                            {
                                "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                "message": "Invalid interaction response type",
                            }
                        ]
                    }
                },
            )
        data: JSON = body.get("data") or {}
        record.callbacks.append(body)
        record.ack_latency = time.monotonic() - record.sent_at
        answer: JSON = {"interaction": {"id": str(record.id), "type": record.type}}
        interaction = answer["interaction"]
        if kind in (4, 5):
            flags = int(data.get("flags") or 0)
            if kind == 5:
                # A deferred reply is a placeholder ("is thinking...") until the bot edits @original.
                data = {"flags": LOADING | (flags & EPHEMERAL)}
            message = self._new_message(record.channel_id, data, call.files, interaction=record)
            await self._store_new(message)
            record.original_message_id = int(message["id"])
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
            if kind == 4:
                # The spec's resource variants are types 4, 7 and 12 only; discord.py needs none for a defer.
                answer["resource"] = {"type": kind, "message": message}
        elif kind in (6, 7):
            if record.source_message_id is None or record.source_message_id not in self.messages:
                raise DiscordError(400, 10008, "Unknown Message")
            record.original_message_id = record.source_message_id
            message = self.messages[record.source_message_id]
            if kind == 7:
                await self._edit(message, data, call.files)
                answer["resource"] = {"type": kind, "message": message}
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=False,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
        elif kind == 9:
            record.modal = data
        return 200, answer

    def _webhook_record(self, call: Call) -> InteractionRecord:
        record = self.interactions.get(call.params["webhook_token"])
        if record is None or call.params["webhook_id"] != str(self.application_id) or not record.callbacks:
            # Discord only creates the interaction's webhook once the interaction is acknowledged.
            raise DiscordError(404, 10015, "Unknown Webhook")
        return record

    def _webhook_message(self, call: Call, record: InteractionRecord) -> JSON:
        if "message_id" in call.params:
            message_id = call.snowflake("message_id")
            allowed = {int(m["id"]) for m in record.followups} | {record.original_message_id}
            if message_id not in allowed:
                raise DiscordError(404, 10008, "Unknown Message")
        else:
            if record.original_message_id is None:
                raise DiscordError(404, 10008, "Unknown Message")
            message_id = record.original_message_id
        message = self.messages.get(message_id)
        if message is None:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _followup(self, call: Call) -> Reply:
        record = self._webhook_record(call)
        body = call.body or {}
        if not any(body.get(k) for k in ("content", "embeds", "components", "poll")) and not call.files:
            raise DiscordError(400, 50006, "Cannot send an empty message")
        message = self._new_message(record.channel_id, body, call.files, interaction=record)
        await self._store_new(message)
        record.followups.append(message)
        wait = call.record.query.get("wait", "").lower() in ("1", "true")
        return (200, message) if wait else (204, None)

    async def _get_webhook_message(self, call: Call) -> Reply:
        return 200, self._webhook_message(call, self._webhook_record(call))

    async def _patch_webhook_message(self, call: Call) -> Reply:
        message = self._webhook_message(call, self._webhook_record(call))
        await self._edit(message, call.body or {}, call.files)
        return 200, message

    async def _delete_webhook_message(self, call: Call) -> Reply:
        message = self._webhook_message(call, self._webhook_record(call))
        self._remove_message(int(message["id"]))
        return 204, None

    # --- message building ----------------------------------------------------------------------------

    def _new_message(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: list[UploadedFile],
        *,
        interaction: InteractionRecord | None = None,
    ) -> JSON:
        message_id = self.snowflake()
        content = body.get("content") or ""
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "content": content,
            "author": self.user_payload(self.bot_user.id),
            "attachments": self._attachments([], body.get("attachments"), files),
            "embeds": [self._embed(e) for e in body.get("embeds") or []],
            "components": self._components(body.get("components") or []),
            "mentions": self._mentions(content),
            "mention_roles": self._mention_roles(content),
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(body.get("tts")),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "flags": int(body.get("flags") or 0) & (SENDABLE_FLAGS | LOADING),
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if isinstance(reference, Mapping) and reference.get("message_id") is not None:
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "message_reference": {
                            "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]
                        }
                    },
                )
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": str(reference.get("channel_id") or channel_id),
            }
            if referenced is not None:
                message["referenced_message"] = copy.deepcopy(referenced)
        if interaction is not None:
            message.update(self._interaction_fields(interaction))
        else:
            # Only interaction responses and followups can be ephemeral; Discord drops the bit elsewhere.
            message["flags"] &= ~EPHEMERAL
        return message

    def _interaction_fields(self, record: InteractionRecord) -> JSON:
        owners = record.payload["authorizing_integration_owners"]
        metadata: JSON = {
            "id": str(record.id),
            "type": record.type,
            "user": self.user_payload(record.user_id),
            "authorizing_integration_owners": owners,
        }
        if record.original_message_id is not None:
            metadata["original_response_message_id"] = str(record.original_message_id)
        if record.type == MESSAGE_COMPONENT and record.source_message_id is not None:
            metadata["interacted_message_id"] = str(record.source_message_id)
        if record.type == MODAL_SUBMIT:
            metadata["triggering_interaction_metadata"] = {
                "id": str(record.id),
                "type": APPLICATION_COMMAND,
                "user": self.user_payload(record.user_id),
                "authorizing_integration_owners": owners,
            }
        fields: JSON = {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "type": 20 if record.type == APPLICATION_COMMAND else 0,
            "interaction_metadata": metadata,
        }
        if record.type == APPLICATION_COMMAND:
            fields["interaction"] = {
                "id": str(record.id),
                "type": record.type,
                "name": record.payload["data"]["name"],
                "user": self.user_payload(record.user_id),
            }
        return fields

    def _attachments(
        self,
        existing: list[JSON],
        listed: Any,
        files: list[UploadedFile],
    ) -> list[JSON]:
        """Kept existing attachments plus new uploads, as Discord resolves `attachments` against files[N]."""
        kept: list[JSON] = []
        described: dict[str, Mapping[str, Any]] = {}
        if isinstance(listed, list):
            by_id = {a["id"]: a for a in existing}
            for entry in listed:
                if not isinstance(entry, Mapping):
                    continue
                key = str(entry.get("id"))
                if key in by_id:
                    kept.append(by_id[key])
                else:
                    described[key] = entry
        else:
            kept = list(existing)
        for upload in files:
            index = upload.field.removeprefix("files[").removesuffix("]")
            meta = described.get(index, {})
            filename = str(meta.get("filename") or upload.filename)
            attachment_id = self.snowflake()
            url = f"{self.root}/attachments/{attachment_id}/{urllib.parse.quote(filename)}"
            self.attachments[url] = upload.data
            attachment: JSON = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
            }
            if meta.get("description"):
                attachment["description"] = meta["description"]
            kept.append(attachment)
        return kept

    def _embed(self, embed: Mapping[str, Any]) -> JSON:
        stored = {k: v for k, v in embed.items() if v is not None}
        stored.setdefault("type", "rich")
        return stored

    def _components(self, components: list[Any]) -> list[JSON]:
        """Components as Discord echoes them: nulls dropped, select defaults filled, numeric ids assigned."""
        echoed: list[JSON] = json.loads(json.dumps(components))
        counter = 0

        def visit(nodes: list[Any]) -> None:
            nonlocal counter
            for node in nodes:
                if not isinstance(node, dict):
                    continue
                for key in [k for k, v in node.items() if v is None]:
                    del node[key]
                counter += 1
                node.setdefault("id", counter)
                if node.get("type") in SELECT_COMPONENT_TYPES:
                    node.setdefault("min_values", 1)
                    node.setdefault("max_values", 1)
                if node.get("type") == 3:
                    node.setdefault("options", [])
                children = node.get("components")
                if isinstance(children, list):
                    visit(children)
                for key in ("accessory", "component"):
                    if isinstance(node.get(key), dict):
                        visit([node[key]])

        visit(echoed)
        return echoed

    def _mentions(self, content: str) -> list[JSON]:
        ids = dict.fromkeys(int(m) for m in re.findall(r"<@!?(\d+)>", content))
        return [self.user_payload(i) for i in ids if i in self.users]

    @staticmethod
    def _mention_roles(content: str) -> list[str]:
        return list(dict.fromkeys(re.findall(r"<@&(\d+)>", content)))

    async def _edit(self, message: JSON, body: Mapping[str, Any], files: list[UploadedFile]) -> None:
        was_loading = bool(message["flags"] & LOADING)
        if "content" in body:
            message["content"] = body["content"] or ""
            message["mentions"] = self._mentions(message["content"])
            message["mention_roles"] = self._mention_roles(message["content"])
        if "embeds" in body:
            message["embeds"] = [self._embed(e) for e in body["embeds"] or []]
        if "components" in body:
            message["components"] = self._components(body["components"] or [])
        if body.get("attachments") is not None or files:
            message["attachments"] = self._attachments(message["attachments"], body.get("attachments"), files)
        # Edits may only toggle SUPPRESS_EMBEDS (and opt into components v2); EPHEMERAL stays as it was,
        # which matters because discord.py sends flags: 0 on every edit. Any edit ends LOADING.
        flags = message["flags"] & ~(SUPPRESS_EMBEDS | LOADING)
        sent = body.get("flags")
        if isinstance(sent, int):
            flags |= sent & (SUPPRESS_EMBEDS | IS_COMPONENTS_V2)
        else:
            flags |= message["flags"] & SUPPRESS_EMBEDS
        message["flags"] = flags
        if not was_loading:
            message["edited_timestamp"] = _now_iso()
        await self._message_event("MESSAGE_UPDATE", message)

    async def _store_new(self, message: JSON) -> None:
        message_id = int(message["id"])
        self.messages[message_id] = message
        channel = self.channels[int(message["channel_id"])]
        if channel["guild_id"] is None:
            self.dms.append(message)
        if message["flags"] & EPHEMERAL:
            owner = message.get("interaction_metadata", {}).get("user", {}).get("id")
            if owner is not None:
                self._ephemeral_owner[message_id] = int(owner)
        await self._message_event("MESSAGE_CREATE", message)

    def _remove_message(self, message_id: int) -> None:
        message = self.messages.pop(message_id)
        self.deleted_messages[message_id] = message
        channel_id = int(message["channel_id"])
        guild = self.guild_of(channel_id)
        if not message["flags"] & EPHEMERAL and self.gateway.active:
            event: JSON = {"id": str(message_id), "channel_id": str(channel_id)}
            if guild is not None:
                event["guild_id"] = str(guild.id)
            intent = GUILD_MESSAGES_INTENT if guild is not None else DIRECT_MESSAGES_INTENT
            self._spawn(self.gateway.dispatch("MESSAGE_DELETE", event, intent=intent))
        self._notifier.notify()

    async def _message_event(self, event: str, message: JSON) -> None:
        """Tell the bot about its own message, as Discord does to bots with the message intents."""
        if message["flags"] & (EPHEMERAL | LOADING) or not self.gateway.active:
            return
        guild = self.guild_of(int(message["channel_id"]))
        payload = dict(message)
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["member"] = self.member_payload(guild, self.bot_user.id, with_user=False)
        intent = GUILD_MESSAGES_INTENT if guild is not None else DIRECT_MESSAGES_INTENT
        await self.gateway.dispatch(event, payload, intent=intent)

    # --- driving the bot: interactions ---------------------------------------------------------------

    def _find_command(self, name: str, guild_id: int | None, options: Mapping[str, Any] | None) -> JSON:
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        # Not synced to this fake: Discord keeps commands from an earlier run, so a bot that skips an
        # unchanged sync is right. Infer option types from the Python values; ids need a real definition.
        inferred = []
        for option, value in (options or {}).items():
            kind = {bool: BOOLEAN, int: INTEGER, float: NUMBER, str: STRING}.get(type(value))
            if kind is None:
                raise AssertionError(
                    f"/{name} is not synced and {option}={value!r} needs its definition; sync the commands first"
                )
            inferred.append({"name": option, "type": kind, "description": option})
        log.info("/%s was never synced to this fake; inferring option types %s", name, inferred)
        # The id stays stable per name, as a real command's would across invocations.
        command_id = self._inferred_command_ids.setdefault(name, str(self.snowflake()))
        return {"id": command_id, "name": name, "type": 1, "options": inferred}

    async def _send_interaction(
        self,
        kind: int,
        data: JSON,
        *,
        user: int,
        guild_id: int | None,
        channel_id: int | None,
        message: JSON | None = None,
        resolved: JSON | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        await self.wait_ready()
        if user not in self.users:
            raise AssertionError(f"unknown user {user}")
        if resolved:
            data = {**data, "resolved": resolved}
        interaction_id = self.snowflake()
        token = f"fake-interaction-{interaction_id}-{secrets.token_urlsafe(16)}"
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
        }
        if guild_id is None:
            channel_id = self.dm_channel_id(user)
            payload.update(
                channel_id=str(channel_id),
                channel=self.channel_payload(channel_id),
                user=self.user_payload(user),
                app_permissions=str(EVERYONE_PERMISSIONS),
                context=1,  # BOT_DM
                # For a guild-installed app used in its bot's DM, Discord reports the owner as "0".
                authorizing_integration_owners={"0": "0"},
                attachment_size_limit=DEFAULT_FILESIZE_LIMIT,
            )
        else:
            guild = self.guilds[guild_id]
            if user not in guild.members:
                raise AssertionError(f"user {user} is not a member of guild {guild_id}")
            channel_id = channel_id or guild.channels[0]
            if channel_id not in guild.channels:
                raise AssertionError(f"channel {channel_id} is not in guild {guild_id}")
            member = self.member_payload(guild, user)
            member["permissions"] = str(guild.permissions_for(user))
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                channel_id=str(channel_id),
                channel=self.channel_payload(channel_id, for_user=user),
                member=member,
                app_permissions=str(guild.permissions_for(self.bot_user.id)),
                context=0,  # GUILD
                authorizing_integration_owners={"0": str(guild_id)},
                attachment_size_limit=guild.filesize_limit,
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            user_id=user,
            guild_id=guild_id,
            channel_id=channel_id,
            payload=payload,
            sent_at=time.monotonic(),
            source_message_id=int(message["id"]) if message is not None else None,
            _notifier=self._notifier,
            _messages=self.messages,
            _explain=self._explain,
        )
        self.interactions[token] = record
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    def _build_options(
        self,
        definitions: list[JSON],
        values: Mapping[str, Any],
        *,
        command: str,
        guild_id: int | None,
        resolved: JSON,
        focused: str | None = None,
    ) -> list[JSON]:
        by_name = {d["name"]: d for d in definitions}
        options: list[JSON] = []
        for name, value in values.items():
            definition = by_name.get(name)
            if definition is None:
                raise AssertionError(f"/{command} has no option {name!r}; it has {sorted(by_name)}")
            kind = int(definition["type"])
            option: JSON = {"name": name, "type": kind}
            if name == focused:
                # While typing, Discord sends the raw partial text of the focused option.
                option.update(value=str(value), focused=True)
            else:
                option["value"] = self._option_value(kind, value, guild_id, resolved, definition, command)
            options.append(option)
        if focused is None:
            missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
            if missing:
                raise AssertionError(f"/{command} requires {missing}; Discord would not let the user send it")
        return options

    def _option_value(
        self, kind: int, value: Any, guild_id: int | None, resolved: JSON, definition: JSON, command: str
    ) -> Any:
        choices = definition.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise AssertionError(f"/{command} {definition['name']}={value!r} is not one of its choices")
        if kind == STRING:
            return str(value)
        if kind == INTEGER:
            return int(value)
        if kind == NUMBER:
            return float(value)
        if kind == BOOLEAN:
            return bool(value)
        if kind == ATTACHMENT:
            filename, data = value
            attachment = self._attachments([], None, [UploadedFile("files[0]", filename, data, None)])[0]
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        snowflake = int(value)
        self._resolve(kind, snowflake, guild_id, resolved)
        return str(snowflake)

    def _resolve(self, kind: int, snowflake: int, guild_id: int | None, resolved: JSON) -> None:
        """Fill `resolved` for a user, role or channel id, as Discord does for options and selects."""
        guild = self.guilds.get(guild_id) if guild_id is not None else None
        if kind in (USER, MENTIONABLE) and snowflake in self.users:
            resolved.setdefault("users", {})[str(snowflake)] = self.user_payload(snowflake)
            if guild is not None and snowflake in guild.members:
                member = self.member_payload(guild, snowflake, with_user=False)
                member["permissions"] = str(guild.permissions_for(snowflake))
                resolved.setdefault("members", {})[str(snowflake)] = member
            return
        if kind in (ROLE, MENTIONABLE) and guild is not None and snowflake in guild.roles:
            position = list(guild.roles).index(snowflake)
            resolved.setdefault("roles", {})[str(snowflake)] = self.role_payload(guild, snowflake, position)
            return
        if kind == CHANNEL and snowflake in self.channels:
            channel = self.channel_payload(snowflake)
            if guild is not None and self.channels[snowflake]["guild_id"] == guild.id:
                channel["permissions"] = str(guild.permissions_for(self.bot_user.id))
            resolved.setdefault("channels", {})[str(snowflake)] = channel
            return
        raise AssertionError(f"cannot resolve {snowflake} as option type {kind}")

    def _command_data(
        self,
        name: str,
        options: Mapping[str, Any] | None,
        *,
        guild_id: int | None,
        subcommand: str | None,
        subcommand_group: str | None,
        focused: str | None = None,
    ) -> tuple[JSON, JSON]:
        command = self._find_command(name, guild_id, options)
        definitions: list[JSON] = command.get("options") or []
        path = [p for p in (subcommand_group, subcommand) if p is not None]
        for part in path:
            nested = next((d for d in definitions if d["name"] == part and d["type"] in (1, 2)), None)
            if nested is None:
                raise AssertionError(f"/{name} has no subcommand (group) {part!r}")
            definitions = nested.get("options") or []
        resolved: JSON = {}
        leaf = self._build_options(
            definitions, options or {}, command=name, guild_id=guild_id, resolved=resolved, focused=focused
        )
        if subcommand is not None:
            leaf = [{"name": subcommand, "type": SUB_COMMAND, "options": leaf}]
        if subcommand_group is not None:
            leaf = [{"name": subcommand_group, "type": SUB_COMMAND_GROUP, "options": leaf}]
        data: JSON = {"id": command["id"], "name": name, "type": 1, "options": leaf}
        if command.get("guild_id") is not None:
            data["guild_id"] = command["guild_id"]
        return data, resolved

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        subcommand: str | None = None,
        subcommand_group: str | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Invoke a synced slash command as `user`; the record fills in as the bot answers.

        Option values are Python values; user, role and channel options take ids, attachment options take
        (filename, bytes). `dm=True` sends it from the user's DM with the bot (no guild, `user` not `member`).
        """
        guild = None if dm else (guild_id or GUILD_ID)
        data, resolved = self._command_data(
            name, options, guild_id=guild, subcommand=subcommand, subcommand_group=subcommand_group
        )
        return await self._send_interaction(
            APPLICATION_COMMAND,
            data,
            user=user,
            guild_id=guild,
            channel_id=channel_id,
            resolved=resolved,
            locale=locale,
        )

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user: int,
        guild_id: int | None = None,
        channel_id: int | None = None,
        subcommand: str | None = None,
        subcommand_group: str | None = None,
        timeout: float = 5,
    ) -> list[JSON]:
        """Send an autocomplete interaction for `focused` and return the choices the bot offered."""
        guild = guild_id or GUILD_ID
        data, resolved = self._command_data(
            name,
            options,
            guild_id=guild,
            subcommand=subcommand,
            subcommand_group=subcommand_group,
            focused=focused,
        )
        record = await self._send_interaction(
            AUTOCOMPLETE, data, user=user, guild_id=guild, channel_id=channel_id, resolved=resolved
        )
        response = await record.wait_response(timeout)
        assert response["type"] == 8, f"autocomplete answered with callback type {response['type']}"
        choices: list[JSON] = (response.get("data") or {}).get("choices") or []
        return choices

    def _message_context(self, message_id: int, user: int) -> tuple[JSON, int | None, int]:
        message = self.messages.get(message_id)
        if message is None:
            raise AssertionError(f"message {message_id} does not exist (or was deleted)")
        owner = self._ephemeral_owner.get(message_id)
        if owner is not None and owner != user:
            raise AssertionError(f"message {message_id} is ephemeral and only user {owner} can see it")
        channel_id = int(message["channel_id"])
        guild = self.guild_of(channel_id)
        return message, (guild.id if guild is not None else None), channel_id

    async def click(self, message_id: int, custom_id: str, *, user: int) -> InteractionRecord:
        """Click a button on a stored message; raises AssertionError if no such enabled button exists."""
        message, guild_id, channel_id = self._message_context(message_id, user)
        button = self._find_component(message, custom_id)
        if button is None or button.get("type") != 2:
            raise AssertionError(f"no button {custom_id!r} on message {message_id}; it has {self._custom_ids(message)}")
        if button.get("disabled"):
            raise AssertionError(f"button {custom_id!r} on message {message_id} is disabled")
        data = {"custom_id": custom_id, "component_type": 2, "id": button.get("id")}
        await asyncio.sleep(REACTION_TIME)
        return await self._send_interaction(
            MESSAGE_COMPONENT, data, user=user, guild_id=guild_id, channel_id=channel_id, message=message
        )

    async def select(self, message_id: int, custom_id: str, values: list[str], *, user: int) -> InteractionRecord:
        """Choose `values` in a select menu on a stored message."""
        message, guild_id, channel_id = self._message_context(message_id, user)
        menu = self._find_component(message, custom_id)
        if menu is None or menu.get("type") not in SELECT_COMPONENT_TYPES:
            raise AssertionError(f"no select {custom_id!r} on message {message_id}; it has {self._custom_ids(message)}")
        if menu.get("disabled"):
            raise AssertionError(f"select {custom_id!r} on message {message_id} is disabled")
        low, high = menu.get("min_values", 1), menu.get("max_values", 1)
        if not low <= len(values) <= high:
            raise AssertionError(f"select {custom_id!r} takes {low}..{high} values, got {len(values)}")
        resolved: JSON = {}
        kind = int(menu["type"])
        if kind == 3:
            offered = [o["value"] for o in menu.get("options", [])]
            unknown = [v for v in values if v not in offered]
            if unknown:
                raise AssertionError(f"select {custom_id!r} does not offer {unknown}; it offers {offered}")
        else:
            option_kind = {5: USER, 6: ROLE, 7: MENTIONABLE, 8: CHANNEL}[kind]
            for value in values:
                self._resolve(option_kind, int(value), guild_id, resolved)
        data: JSON = {"custom_id": custom_id, "component_type": kind, "values": list(values), "id": menu.get("id")}
        await asyncio.sleep(REACTION_TIME)
        return await self._send_interaction(
            MESSAGE_COMPONENT,
            data,
            user=user,
            guild_id=guild_id,
            channel_id=channel_id,
            message=message,
            resolved=resolved,
        )

    async def submit_modal(
        self, opened: InteractionRecord, values: Mapping[str, str | list[str]], *, user: int
    ) -> InteractionRecord:
        """Submit the modal the bot opened in answer to `opened`, filling text inputs from `values`."""
        modal = opened.modal
        if modal is None:
            raise AssertionError(f"interaction {opened.id} did not open a modal (callbacks: {opened.callbacks})")
        used: set[str] = set()
        counter = 0

        def submitted(component: JSON) -> JSON:
            nonlocal counter
            counter += 1
            kind = component["type"]
            custom_id = component.get("custom_id")
            answer: JSON = {"type": kind, "id": component.get("id", counter)}
            if custom_id is None:
                return answer
            answer["custom_id"] = custom_id
            used.add(custom_id)
            if kind == 4:
                text = values.get(custom_id, component.get("value") or "")
                if not isinstance(text, str):
                    raise AssertionError(f"text input {custom_id!r} takes a string")
                if component.get("required", True) and not text:
                    raise AssertionError(f"text input {custom_id!r} is required")
                if len(text) > component.get("max_length", 4000) or (
                    text and len(text) < component.get("min_length", 0)
                ):
                    raise AssertionError(f"text input {custom_id!r} length {len(text)} is out of bounds")
                answer["value"] = text
            else:
                chosen = values.get(custom_id, [])
                answer["values"] = [chosen] if isinstance(chosen, str) else list(chosen)
            return answer

        components: list[JSON] = []
        for top in modal.get("components", []):
            counter += 1
            if top["type"] == 1:
                row_id = top.get("id", counter)
                components.append({"type": 1, "id": row_id, "components": [submitted(c) for c in top["components"]]})
            elif top["type"] == 18:
                label_id = top.get("id", counter)
                components.append({"type": 18, "id": label_id, "component": submitted(top["component"])})
            else:
                components.append({"type": top["type"], "id": top.get("id", counter)})
        unknown = set(values) - used
        if unknown:
            raise AssertionError(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}")
        data: JSON = {"custom_id": modal["custom_id"], "components": components}
        await asyncio.sleep(REACTION_TIME)  # discord.py registers the modal after the type-9 answer arrives
        message = self.messages.get(opened.source_message_id) if opened.source_message_id else None
        return await self._send_interaction(
            MODAL_SUBMIT,
            data,
            user=user,
            guild_id=opened.guild_id,
            channel_id=opened.channel_id,
            message=message,
        )

    @staticmethod
    def _walk_components(components: list[Any]) -> Iterator[JSON]:
        for component in components:
            if not isinstance(component, dict):
                continue
            yield component
            yield from FakeDiscord._walk_components(component.get("components") or [])
            for key in ("accessory", "component"):
                if isinstance(component.get(key), dict):
                    yield from FakeDiscord._walk_components([component[key]])

    def _find_component(self, message: JSON, custom_id: str) -> JSON | None:
        return next(
            (c for c in self._walk_components(message.get("components", [])) if c.get("custom_id") == custom_id),
            None,
        )

    def _custom_ids(self, message: JSON) -> list[str]:
        return [c["custom_id"] for c in self._walk_components(message.get("components", [])) if "custom_id" in c]
