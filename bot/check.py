"""`python -m bot check`: is this install ready? One line per check, exit 0 when every one passed."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

import aiohttp
from aiohttp import web

from bot.backends import chosen_backend, open_backend
from bot.backends.base import BackendError
from bot.discord_check import Outcome, check_discord
from bot.jobs import ErrorKind
from bot.logs import SecretMasker
from bot.settings import Settings, SettingsError, load_settings
from bot.store import StoreError, open_store
from bot.store.postgres.migrations import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.store.sqlite.migrations import SCHEMA_VERSION as SQLITE_SCHEMA
from bot.webhook import healthz

CHECK_TIMEOUT = 10.0
# The schema version this release migrates each kind of database to.
LATEST_SCHEMA = {"sqlite": SQLITE_SCHEMA, "postgresql": len(POSTGRES_MIGRATIONS)}


class CheckFailed(Exception):
    """A check did not pass; the message says why in words an operator can act on."""


async def check_database(settings: Settings) -> str:
    """Which database, where (a URL's password masked), whether it opens, and how far it is migrated."""
    try:
        store = await open_store(settings.DATABASE_PATH, settings.database_url)
    except StoreError as exc:  # already names the database and the reason, password masked
        raise CheckFailed(str(exc)) from None
    try:
        version, jobs = await store.summary()
    finally:
        await store.close()
    return f"{store.kind} {store.description}, schema version {version} of {LATEST_SCHEMA[store.kind]}, {jobs} jobs"


async def check_backend(settings: Settings, session: aiohttp.ClientSession) -> str:
    """Ask the configured backend (or its embedded simulator) whether it is there and the account fine."""
    opened = await open_backend(settings, session, timeout=CHECK_TIMEOUT)
    facts = opened.backend.facts
    try:
        try:
            found = await opened.backend.health()
        except BackendError as exc:
            raise CheckFailed(_refusal(exc, facts.label, facts.token_setting, opened.where)) from None
    finally:
        await opened.close()
    where = f"{opened.where} (results are simulated: {opened.simulated_reason})" if opened.simulated_reason \
        else opened.where
    return f"{facts.label} at {where}: {'; '.join(found)}"


def _refusal(exc: BackendError, label: str, token_setting: str, where: str) -> str:
    if exc.kind is ErrorKind.UNAUTHORISED:
        return f"{label} refused {token_setting} ({exc.status})"
    if exc.kind is ErrorKind.NO_SUBSCRIPTION:
        return f"{label} says the account has no subscription ({exc.status})"
    if exc.kind in (ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT) and exc.status is None:
        return f"{label} could not be reached at {where} ({exc.kind.value})"
    if exc.status is None:
        return exc.detail or exc.kind.value
    return f"{label} answered {exc.status}: {exc.detail}"


async def check_public_url(settings: Settings, session: aiohttp.ClientSession) -> str:
    if settings.PUBLIC_URL is None:
        return "PUBLIC_URL is not set: no callbacks, jobs are followed by polling"
    url = f"{settings.PUBLIC_URL}/healthz"
    # When the bot is not running, answer /healthz ourselves on HOST:PORT for the length of the check,
    # so the test covers the whole way from PUBLIC_URL to this process's port.
    runner: web.AppRunner | None = None
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    candidate = web.AppRunner(app, access_log=None)
    await candidate.setup()
    try:
        await web.TCPSite(candidate, settings.HOST, settings.PORT).start()
        runner = candidate
    except OSError as exc:
        await candidate.cleanup()
        if exc.errno != errno.EADDRINUSE:
            raise CheckFailed(f"cannot listen on {settings.HOST}:{settings.PORT} ({exc.strerror})") from None
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT)) as response:
            if response.status != 200:
                raise CheckFailed(f"{url} answered HTTP {response.status}, expected 200")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CheckFailed(f"{url} is not reachable from this machine ({type(exc).__name__})") from None
    finally:
        if runner is not None:
            await runner.cleanup()
    return f"{url} is reachable"


Check = Callable[[aiohttp.ClientSession], Awaitable[str]]
Say = Callable[[str], None]  # prints one line of the report


async def run_checks(settings: Settings, out: TextIO) -> bool:
    first: list[tuple[str, Check]] = [
        ("database", lambda _: check_database(settings)),
        (chosen_backend(settings), lambda s: check_backend(settings, s)),
    ]
    # Every line through the log's masker too: a check's failure may quote a library's words, and those know no
    # secrets (a URL's password, a token).
    masker = SecretMasker(settings.secrets())

    def say(line: str) -> None:
        print(masker.mask(line), file=out)

    passed = True
    async with aiohttp.ClientSession() as session:
        for name, check in first:
            passed = await _report(name, check, session, say) and passed
        # Discord's token and then each server: several lines, from one check.
        try:
            outcomes = await asyncio.wait_for(check_discord(settings, session, CHECK_TIMEOUT), CHECK_TIMEOUT * 3)
        except TimeoutError:
            outcomes = [Outcome(False, "discord", f"no answer within {CHECK_TIMEOUT * 3:.0f}s")]
        except Exception as exc:  # a check must report, never crash the others
            outcomes = [Outcome(False, "discord", f"{type(exc).__name__}: {exc}")]
        for outcome in outcomes:
            passed = passed and outcome.ok
            say(f"{'ok   ' if outcome.ok else 'FAIL '} {outcome.name}: {outcome.detail}")
        passed = await _report("public url", lambda s: check_public_url(settings, s), session, say) and passed
    return passed


async def _report(name: str, check: Check, session: aiohttp.ClientSession, say: Say) -> bool:
    try:
        detail = await asyncio.wait_for(check(session), CHECK_TIMEOUT * 2)
        say(f"ok    {name}: {detail}")
        return True
    except CheckFailed as exc:
        say(f"FAIL  {name}: {exc}")
    except TimeoutError:
        say(f"FAIL  {name}: no answer within {CHECK_TIMEOUT * 2:.0f}s")
    except Exception as exc:  # a check must report, never crash the others
        say(f"FAIL  {name}: {type(exc).__name__}: {exc}")
    return False


def main(out: TextIO = sys.stdout) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"FAIL  settings: {problem}", file=out)
        return 2
    print("ok    settings: every setting is valid", file=out)
    with contextlib.suppress(KeyboardInterrupt):
        return 0 if asyncio.run(run_checks(settings, out)) else 1
    return 1
