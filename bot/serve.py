"""`python -m bot run`: open the resources, run the bot until SIGTERM or Ctrl-C, and close them in reverse."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import discord

from bot.client import make_bot
from bot.logs import SecretMasker
from bot.settings import Settings
from bot.store import open_store

log = logging.getLogger("bot")


async def serve(settings: Settings, masker: SecretMasker) -> None:
    # REST requests are built on this class attribute; set before login so every call, interaction
    # responses included, goes to DISCORD_API_BASE.
    discord.http.Route.BASE = settings.DISCORD_API_BASE
    async with aiohttp.ClientSession() as session:
        store = await open_store(settings.DATABASE_PATH, settings.database_url)
        try:
            bot = make_bot(settings, store, session, masker=masker)
            async with bot:
                loop = asyncio.get_running_loop()
                closing: list[asyncio.Task[None]] = []

                def close(name: str) -> None:
                    # SIGTERM is what platforms send before stopping a Procfile process: the listener stops
                    # accepting, in-flight writes finish, the gateway closes, then start() returns.
                    if not closing:
                        log.info("%s received: shutting down", name)
                        closing.append(asyncio.create_task(bot.close()))

                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, close, sig.name)
                await bot.start(settings.DISCORD_TOKEN.get_secret_value())
                if closing:
                    await closing[0]
        finally:
            await store.close()
