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

from bot.backends.useapi import errors
from bot.backends.useapi.client import UseapiClient
from bot.backends.useapi.simulator import Simulator
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store
from bot.webhook import healthz

CHECK_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check did not pass; the message says why in words an operator can act on."""


async def check_database(settings: Settings) -> str:
    store = await Store.open(settings.DATABASE_PATH)
    try:
        version, jobs = await store.summary()
    finally:
        await store.close()
    return f"{settings.DATABASE_PATH} opens (schema version {version}, {jobs} jobs)"


async def check_useapi(settings: Settings, session: aiohttp.ClientSession) -> str:
    simulator: Simulator | None = None
    base_url, token = settings.USEAPI_BASE_URL, ""
    if settings.USEAPI_TOKEN is None:
        simulator = Simulator(token=None)
        await simulator.start()
        base_url, token = simulator.base_url, "simulated"
    else:
        token = settings.USEAPI_TOKEN.get_secret_value()
    try:
        client = UseapiClient(session, base_url, token, timeout=CHECK_TIMEOUT, channel=settings.USEAPI_CHANNEL)
        try:
            accounts = await client.account()
        except errors.Unauthorized:
            raise CheckFailed("useapi refused USEAPI_TOKEN (401)") from None
        except errors.PaymentRequired:
            raise CheckFailed("useapi says the account has no subscription (402)") from None
        except errors.UseapiConnectionError as exc:
            raise CheckFailed(f"useapi could not be reached at {base_url} ({type(exc).__name__})") from None
        except errors.UseapiError as exc:
            raise CheckFailed(f"useapi answered {exc.status}: {exc.error}") from None
    finally:
        if simulator is not None:
            await simulator.close()
    if not accounts:
        raise CheckFailed("useapi has no Midjourney account configured (GET /account/midjourney is empty)")
    pending = [name for name, account in accounts.items() if account.pendingModMessage]
    if pending:
        raise CheckFailed(f"Midjourney has a pending moderation message on channel {', '.join(pending)}: "
                          "answer it in Discord, then run /relay reset")
    where = "the embedded simulator (no USEAPI_TOKEN: results are simulated)" if simulator else base_url
    return f"{len(accounts)} Midjourney account(s) at {where}, none pending moderation"


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


async def run_checks(settings: Settings, out: TextIO) -> bool:
    checks: list[tuple[str, Callable[[aiohttp.ClientSession], Awaitable[str]]]] = [
        ("database", lambda _: check_database(settings)),
        ("useapi", lambda s: check_useapi(settings, s)),
        ("public url", lambda s: check_public_url(settings, s)),
    ]
    passed = True
    async with aiohttp.ClientSession() as session:
        for name, check in checks:
            try:
                detail = await asyncio.wait_for(check(session), CHECK_TIMEOUT * 2)
                print(f"ok    {name}: {detail}", file=out)
            except CheckFailed as exc:
                passed = False
                print(f"FAIL  {name}: {exc}", file=out)
            except TimeoutError:
                passed = False
                print(f"FAIL  {name}: no answer within {CHECK_TIMEOUT * 2:.0f}s", file=out)
            except Exception as exc:  # a check must report, never crash the others
                passed = False
                print(f"FAIL  {name}: {type(exc).__name__}: {exc}", file=out)
    return passed


def main(out: TextIO = sys.stdout) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"FAIL  settings: {exc}", file=out)
        return 2
    print("ok    settings: every setting is valid", file=out)
    with contextlib.suppress(KeyboardInterrupt):
        return 0 if asyncio.run(run_checks(settings, out)) else 1
    return 1
