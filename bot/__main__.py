"""`python -m bot`: read the settings, take the instance lock, run the bot until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import discord

from bot.client import RelayBot
from bot.logs import SecretMasker, setup_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store

log = logging.getLogger("bot")

LOCK_WAIT_SECONDS = 30.0


class InstanceLocked(Exception):
    """Another process holds the database."""


@contextlib.contextmanager
def instance_lock(database_path: str, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold an OS lock beside the database: one bot per database, released even by `kill -9`."""
    lock_path = Path(f"{database_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise InstanceLocked(str(lock_path)) from None
                if not announced:
                    log.warning("another instance of the bot holds %s; waiting up to %.0fs for it to stop",
                                lock_path, wait)
                    announced = True
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


async def run(settings: Settings, masker: SecretMasker) -> None:
    """Open the resources, run the bot, and close them in reverse."""
    # REST requests are built on this class attribute; set before login so every call, interaction
    # responses included, goes to DISCORD_API_BASE.
    discord.http.Route.BASE = settings.DISCORD_API_BASE
    async with aiohttp.ClientSession() as session:
        store = await Store.open(settings.DATABASE_PATH)
        try:
            bot = RelayBot(settings, store, session, masker=masker)
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


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    masker = setup_logging(settings.LOG_LEVEL, settings.secrets())
    try:
        with instance_lock(settings.DATABASE_PATH, settings.INSTANCE_LOCK_WAIT_SECONDS):
            asyncio.run(run(settings, masker))
    except InstanceLocked as exc:
        print(f"error: another instance of the bot is still using this database (lock {exc}) after "
              f"{settings.INSTANCE_LOCK_WAIT_SECONDS:g}s of waiting; stop it first "
              "(or raise INSTANCE_LOCK_WAIT_SECONDS)",
              file=sys.stderr)
        return 3
    except discord.LoginFailure:
        print("error: Discord refused DISCORD_TOKEN; check the bot token in the developer portal", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("error: Discord refused the gateway intents", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except Exception:
        # Through the masked log handler rather than Python's own traceback printer, which knows no secrets.
        log.exception("the bot stopped on an unexpected error")
        return 1
    return 0


def cli(argv: list[str]) -> int:
    """`python -m bot` runs the bot; `python -m bot check` checks the install and exits."""
    if argv[:1] == ["check"]:
        from bot.check import main as check  # noqa: PLC0415 - only the check needs it

        return check()
    if argv:
        print("usage: python -m bot [check]", file=sys.stderr)
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
