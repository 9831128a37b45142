"""The Bot: setup_hook opens everything the relay needs, close() undoes it in reverse. It imports no cog."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.backends import chosen_backend, open_backend
from bot.gateway import GatewayTurn, Role
from bot.limits import Limits
from bot.logs import SecretMasker, mask_body
from bot.media import MediaPreparer
from bot.metrics import Metrics
from bot.publisher import DiscordPublisher
from bot.relay import Relay, RelaySettings
from bot.settings import Settings
from bot.store import Store
from bot.webhook import CALLBACK_PREFIX, Listener, Readiness, make_app

log = logging.getLogger(__name__)

# The features, each a cog (or a package of one): loaded by name, so the core never imports them.
EXTENSIONS = ("cogs.errors", "cogs.imagine", "cogs.images", "cogs.buttons", "cogs.button_command", "cogs.cancel",
              "cogs.jobs", "cogs.removal", "cogs.relay")
# Simulated jobs take a few seconds, like a fast Midjourney job would feel, without wasting anyone's time.
SIMULATED_JOB_SECONDS = 6.0
STANDBY = ("standby: another process holds Discord's gateway; this one takes callbacks, schedules, polls and "
           "publishes")


class RelayTree(app_commands.CommandTree["RelayBot"]):
    """Refuses every command outside the servers the relay serves, saying why."""

    async def interaction_check(self, interaction: discord.Interaction[RelayBot]) -> bool:
        reason = interaction.client.refusal(interaction.guild_id)
        if reason is None:
            return True
        if interaction.type is discord.InteractionType.autocomplete:
            return False
        await interaction.response.send_message(reason, ephemeral=True)
        return False


def relay_settings(settings: Settings, max_jobs: int) -> RelaySettings:
    return RelaySettings(
        max_jobs=max_jobs, poll_interval=settings.POLL_INTERVAL, job_timeout_minutes=settings.JOB_TIMEOUT_MINUTES,
        retry_seconds=settings.BACKEND_RETRY_SECONDS, retry_attempts=settings.BACKEND_RETRY_ATTEMPTS,
        backoff_seconds=settings.BACKEND_BACKOFF_SECONDS, backoff_max_seconds=settings.BACKEND_BACKOFF_MAX_SECONDS,
        progress_edit_seconds=settings.PROGRESS_EDIT_SECONDS, account=settings.USEAPI_CHANNEL,
        public_url=settings.PUBLIC_URL, kept_image_days=settings.KEPT_IMAGE_DAYS,
        call_timeout=settings.BACKEND_TIMEOUT_SECONDS,
    )


class RelayBot(commands.Bot):
    """A discord.py bot that relays Midjourney through the configured backend."""

    relay: Relay
    publisher: DiscordPublisher

    def __init__(self, settings: Settings, store: Store, session: aiohttp.ClientSession, *,
                 masker: SecretMasker | None = None, guild_ready_timeout: float = 2.0, **gateway: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels and roles for permission checks; no privileged intents needed
        intents.guild_reactions = True  # ❌ on a working message cancels its job
        # The relay never joins a voice channel, so PyNaCl and davey are not installed; these class flags are how
        # discord.py lets such a bot turn off the warning it would log at every start (read in Client.__init__).
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=RelayTree,
                         help_command=None, allowed_mentions=render.NO_MENTIONS,
                         guild_ready_timeout=guild_ready_timeout, **gateway)
        self.settings = settings
        self.store = store
        self.session = session
        self.masker = masker or SecretMasker(settings.secrets())
        self.limits = Limits(store, settings)
        self.metrics = Metrics()
        self.simulator: object | None = None
        self.listener: Listener | None = None
        self.media: MediaPreparer | None = None
        self._close_backend: Callable[[], Awaitable[None]] | None = None
        # Several processes on one database take turns at the gateway (bot.gateway), unless SHARD_IDS gives
        # this one shards of its own.
        self.turn = GatewayTurn(store.coordination.gateway, shared=settings.gateway_shared)

    def refusal(self, guild_id: int | None) -> str | None:
        """Why this bot will not act here, or None when it serves this place."""
        if guild_id is None:
            return "This bot works only inside a server."
        allowed = self.settings.allowed_guilds
        if allowed is not None and guild_id not in allowed:
            return "This bot is not enabled for this server."
        return None

    async def setup_hook(self) -> None:
        # discord.py dials a hard-coded gateway unless told otherwise; ask the REST base for its own, so
        # one setting (DISCORD_API_BASE) moves both REST and gateway (a REST proxy, or the test fake).
        _, gateway, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

        settings = self.settings
        secret = (settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET
                  else await self.store.state.webhook_secret(secrets.token_urlsafe(32)))
        self.masker.add(secret)
        opened = await open_backend(settings, self.session, observer=self.metrics.answers_of(chosen_backend(settings)),
                                    mask=lambda body: mask_body(body, secret), job_seconds=SIMULATED_JOB_SECONDS)
        self._close_backend = opened.close
        self.simulator = opened.simulator
        backend = opened.backend
        banner = render.simulated_banner(opened.simulated_reason) if opened.simulated_reason else ""
        self.publisher = DiscordPublisher(self, self.store.identity, banner, notices=self.store.notices,
                                          session=self.session)
        callback_base = (f"{settings.PUBLIC_URL}{CALLBACK_PREFIX}/{backend.facts.name}/{secret}"
                         if settings.PUBLIC_URL else None)
        if callback_base is None:
            log.info("PUBLIC_URL is not set: following jobs by polling every %.0fs", settings.POLL_INTERVAL)
        self.media = MediaPreparer(self.session, settings.IMAGE_WORKERS)
        self.relay = Relay(settings=relay_settings(settings, opened.max_jobs), store=self.store, backend=backend,
                           publisher=self.publisher, media=self.media, callback_base=callback_base,
                           metrics=self.metrics, admit=self.limits.admit)
        metrics_token = settings.METRICS_TOKEN.get_secret_value() if settings.METRICS_TOKEN else None
        self.listener = Listener(make_app(self.relay, secret, metrics_token, readiness=self.readiness,
                                          role=lambda: self.gateway_role.value), settings.HOST, settings.PORT)
        await self.listener.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.relay.start()

    async def connect(self, *, reconnect: bool = True) -> None:
        """Connect to the gateway while this process holds it (at once where it needs no turn), and stand by
        otherwise: start() = login() (setup_hook: the relay runs from here on) then this."""
        await self.turn.run(lambda: super(RelayBot, self).connect(reconnect=reconnect), self.disconnect_gateway)

    async def disconnect_gateway(self) -> None:
        """Close the gateway connection, keeping REST and everything else (the lock was lost)."""
        if self.ws is not None:
            await self.ws.close(code=1000)

    def gateway_connected(self) -> bool:
        # `ws` is None until the first connection, and stays the closed one while discord.py retries.
        return self.ws is not None and self.ws.open and self.is_ready() and not self.is_closed()

    @property
    def gateway_role(self) -> Role:
        if not self.turn.holding:
            return Role.STANDBY
        return Role.CONNECTED if self.gateway_connected() else Role.CONNECTING

    async def readiness(self) -> Readiness:
        """For /readyz: the gateway connected (between a drop and the resume it is not) or honestly standing by
        (another process holds it: this one serves all the same), the database answering."""
        role = self.gateway_role
        return Readiness({"gateway": "not connected to Discord's gateway" if role is Role.CONNECTING else None,
                          "database": await self.store.problem()},
                         paused=self.relay.paused_reason, notes={"gateway": STANDBY} if role is Role.STANDBY else {})

    async def sync_commands(self) -> None:
        """Sync the slash commands only when their definitions changed since the last sync."""
        guild = discord.Object(self.settings.DISCORD_GUILD_ID) if self.settings.DISCORD_GUILD_ID else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload: list[dict[str, Any]] = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        scope = f"{guild.id if guild else 'global'}:{self.application_id}"
        if await self.store.state.command_hash(scope) == digest:
            log.info("slash commands unchanged; not syncing")
            return
        await self.tree.sync(guild=guild)
        await self.store.state.set_command_hash(scope, digest)
        log.info("slash commands synced (%s)", f"server {guild.id}" if guild else "global")

    async def close(self) -> None:
        # Reverse order of setup_hook: stop taking callbacks, let the relay record in-flight work,
        # then the backend (an embedded simulator), then the gateway.
        self.turn.close()
        if self.listener is not None:
            await self.listener.stop()
        if hasattr(self, "relay"):
            await self.relay.stop()
        if hasattr(self, "publisher"):
            await self.publisher.close()
        if self.media is not None:
            self.media.close()
        if self._close_backend is not None:
            await self._close_backend()
        await super().close()


class ShardedRelayBot(RelayBot, commands.AutoShardedBot):
    """The same bot with the gateway in shards (SHARD_COUNT, and SHARD_IDS for this process's own)."""

    async def disconnect_gateway(self) -> None:
        for shard in self.shards.values():
            await shard.disconnect()

    def gateway_connected(self) -> bool:
        return (self.is_ready() and not self.is_closed() and bool(self.shards)
                and all(not shard.is_closed() for shard in self.shards.values()))


def make_bot(settings: Settings, store: Store, session: aiohttp.ClientSession, *,
             masker: SecretMasker | None = None) -> RelayBot:
    """The bot the settings ask for: in shards when SHARD_COUNT is set, else one gateway connection."""
    if not settings.sharded:
        return RelayBot(settings, store, session, masker=masker)
    shards: dict[str, Any] = {"shard_count": settings.SHARD_COUNT}
    if settings.SHARD_IDS:
        shards["shard_ids"] = list(settings.SHARD_IDS)
    return ShardedRelayBot(settings, store, session, masker=masker, **shards)
