"""The Bot: setup_hook opens everything the relay needs, close() undoes it in reverse."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.backends.useapi.client import UseapiClient
from bot.backends.useapi.simulator import Simulator
from bot.limits import Limits
from bot.logs import SecretMasker
from bot.metrics import Metrics
from bot.publisher import DiscordPublisher
from bot.relay import Relay
from bot.settings import Settings
from bot.store import Store
from bot.webhook import CALLBACK_PREFIX, Listener, make_app
from cogs.common import relay_group

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.buttons", "cogs.admin", "cogs.team", "cogs.jobs")
# Simulated jobs take a few seconds, like a fast Midjourney job would feel, without wasting anyone's time.
SIMULATED_JOB_SECONDS = 6.0


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


class RelayBot(commands.Bot):
    """A discord.py bot that relays Midjourney through useapi.net."""

    relay: Relay
    publisher: DiscordPublisher
    useapi: UseapiClient

    def __init__(self, settings: Settings, store: Store, session: aiohttp.ClientSession, *,
                 masker: SecretMasker | None = None, guild_ready_timeout: float = 2.0) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels and roles for permission checks; no privileged intents needed
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=RelayTree,
                         help_command=None, allowed_mentions=render.NO_MENTIONS,
                         guild_ready_timeout=guild_ready_timeout)
        self.settings = settings
        self.store = store
        self.session = session
        self.masker = masker or SecretMasker(settings.secrets())
        self.limits = Limits(store, settings)
        self.metrics = Metrics()
        self.simulator: Simulator | None = None
        self.listener: Listener | None = None

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
                  else await self.store.meta_setdefault("webhook_secret", secrets.token_urlsafe(32)))
        self.masker.add(secret)

        base_url, token = settings.USEAPI_BASE_URL, ""
        if settings.USEAPI_TOKEN is not None:
            token = settings.USEAPI_TOKEN.get_secret_value()
        else:
            self.simulator = Simulator(token=None, job_seconds=SIMULATED_JOB_SECONDS)
            await self.simulator.start("127.0.0.1", 0)
            base_url, token = self.simulator.base_url, "simulated"
            log.warning("USEAPI_TOKEN is not set: jobs run on the embedded useapi SIMULATOR at %s; "
                        "every result is simulated, not from Midjourney", base_url)
        discord_value = settings.USEAPI_DISCORD.get_secret_value() if settings.USEAPI_DISCORD else None
        self.useapi = UseapiClient(self.session, base_url, token, channel=settings.USEAPI_CHANNEL,
                                   discord=discord_value, observer=self.metrics.useapi_answer,
                                   timeout=settings.USEAPI_TIMEOUT_SECONDS)
        self.publisher = DiscordPublisher(self, self.store)
        callback_base = f"{settings.PUBLIC_URL}{CALLBACK_PREFIX}/{secret}" if settings.PUBLIC_URL else None
        if callback_base is None:
            log.info("PUBLIC_URL is not set: following jobs by polling every %.0fs", settings.POLL_INTERVAL)
        self.relay = Relay(settings=settings, store=self.store, useapi=self.useapi, publisher=self.publisher,
                           http=self.session, callback_base=callback_base, secret=secret,
                           simulated=self.simulator is not None, metrics=self.metrics)
        metrics_token = settings.METRICS_TOKEN.get_secret_value() if settings.METRICS_TOKEN else None
        self.listener = Listener(make_app(self.relay, secret, metrics_token), settings.HOST, settings.PORT)
        await self.listener.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # The cogs attached their /relay subcommands to the shared group as they loaded.
        if relay_group.commands and self.tree.get_command("relay") is None:
            self.tree.add_command(relay_group)
        await self.sync_commands()
        await self.relay.start()

    async def sync_commands(self) -> None:
        """Sync the slash commands only when their definitions changed since the last sync."""
        guild = discord.Object(self.settings.DISCORD_GUILD_ID) if self.settings.DISCORD_GUILD_ID else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload: list[dict[str, Any]] = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"command_hash:{guild.id if guild else 'global'}:{self.application_id}"
        if await self.store.get_meta(key) == digest:
            log.info("slash commands unchanged; not syncing")
            return
        await self.tree.sync(guild=guild)
        await self.store.set_meta(key, digest)
        log.info("slash commands synced (%s)", f"server {guild.id}" if guild else "global")

    async def close(self) -> None:
        # Reverse order of setup_hook: stop taking callbacks, let the relay record in-flight work,
        # then the simulator, then the gateway.
        if self.listener is not None:
            await self.listener.stop()
        if hasattr(self, "relay"):
            await self.relay.stop()
        if self.simulator is not None:
            await self.simulator.close()
        await super().close()
