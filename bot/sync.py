"""`python -m bot sync`: log in, sync the slash commands whatever the last sync recorded, record it, exit.

The bot syncs by itself at start, but only when the commands' definitions changed since the last sync; this
is for when Discord's copy went wrong anyway (a command deleted by hand, another app's sync on the same
application). It needs no gateway connection and starts no relay, so it may run beside a running bot.
"""

from __future__ import annotations

import logging

import aiohttp
import discord

from bot.client import EXTENSIONS, RelayBot
from bot.logs import SecretMasker
from bot.settings import Settings
from bot.store import open_store

log = logging.getLogger(__name__)


class SyncBot(RelayBot):
    """The bot with its commands loaded and nothing else: login() runs this setup_hook, then it is done."""

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # With no hash recorded, sync_commands syncs and records the new one, as a start after a change would.
        await self.store.state.forget_command_hashes()
        await self.sync_commands()


async def sync(settings: Settings, masker: SecretMasker) -> None:
    discord.http.Route.BASE = settings.DISCORD_API_BASE
    async with aiohttp.ClientSession() as session:
        store = await open_store(settings.DATABASE_PATH, settings.database_url)
        try:
            async with SyncBot(settings, store, session, masker=masker) as bot:
                await bot.login(settings.DISCORD_TOKEN.get_secret_value())
        finally:
            await store.close()
