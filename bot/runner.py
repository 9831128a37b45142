"""`run` and `sync`: read the settings, set up logging, hold the instance lock when asked, do the work, and turn
every failure an operator can act on into one line and an exit status."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import discord

from bot.logs import SecretMasker, setup_logging
from bot.reach import unreachable
from bot.settings import Settings, SettingsError, load_settings
from bot.store import StoreError
from bot.store.sqlite.files import make_folder, owner_only

log = logging.getLogger("bot")

LOCK_WAIT_SECONDS = 30.0
# Exit statuses, documented in `python -m bot --help`.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3

Command = Callable[[Settings, SecretMasker], Coroutine[Any, Any, None]]


class InstanceLocked(Exception):
    """Another process holds the database."""


@contextlib.contextmanager
def instance_lock(database_path: str, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold an OS lock beside the SQLite database: one bot per file, released even by `kill -9`."""
    lock_path = Path(f"{database_path}.lock")
    make_folder(database_path)
    owner_only(lock_path, create=True, database=database_path)
    fd = os.open(lock_path, os.O_RDWR)
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


def execute(command: Command, *, lock: bool) -> int:
    """Run `command` with the settings and a masked log, holding the instance lock when `lock` and the store is
    SQLite; the exit status for the process."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    masker = setup_logging(settings.LOG_LEVEL, settings.secrets(), settings.LOG_FORMAT)

    def fail(line: str, status: int) -> int:
        # The one line an operator reads: printed as it is, or in JSON as one more log record for a log
        # collector that reads every line as JSON. Secrets masked either way.
        if settings.LOG_FORMAT == "json":
            log.error("%s", line)
        else:
            print(masker.mask(f"error: {line}"), file=sys.stderr)
        return status

    try:
        # The lock keeps a second bot off an SQLite file. A PostgreSQL database is shared by design (several
        # processes, the store's guarded updates): nothing is locked, nor made at DATABASE_PATH.
        held = instance_lock(settings.DATABASE_PATH, settings.INSTANCE_LOCK_WAIT_SECONDS) \
            if lock and settings.database_url is None else contextlib.nullcontext()
        with held:
            asyncio.run(command(settings, masker))
    except InstanceLocked as exc:
        return fail(f"another instance of the bot is still using this database (lock {exc}) after "
                    f"{settings.INSTANCE_LOCK_WAIT_SECONDS:g}s of waiting; stop it first "
                    "(or raise INSTANCE_LOCK_WAIT_SECONDS)", EXIT_LOCKED)
    except StoreError as exc:
        return fail(str(exc), EXIT_CONFIG)
    except aiohttp.ClientConnectorError as exc:
        # No network, a firewall, a wrong DISCORD_API_BASE: worth a line, not discord.py's 70-line traceback.
        return fail(unreachable(exc, settings.DISCORD_API_BASE), EXIT_FAILED)
    except discord.LoginFailure:
        return fail("Discord refused DISCORD_TOKEN; check the bot token in the developer portal", EXIT_CONFIG)
    except discord.PrivilegedIntentsRequired:
        return fail("Discord refused the gateway intents", EXIT_CONFIG)
    except KeyboardInterrupt:
        pass
    except Exception:
        # Through the masked log handler rather than Python's own traceback printer, which knows no secrets.
        log.exception("the bot stopped on an unexpected error")
        return EXIT_FAILED
    return EXIT_OK
