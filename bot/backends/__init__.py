"""Midjourney backends, each in its own package behind the `Backend` protocol of `base`; `open_backend` is the
one place that chooses and opens the configured one (the bot and `python -m bot check` both use it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.backends.base import Backend
from bot.backends.mjproxy.backend import FACTS as MJPROXY_FACTS
from bot.backends.mjproxy.backend import MjproxyBackend
from bot.backends.mjproxy.client import MjproxyClient
from bot.backends.useapi.backend import FACTS as USEAPI_FACTS
from bot.backends.useapi.backend import UseapiBackend
from bot.backends.useapi.client import UseapiClient
from bot.settings import Settings

log = logging.getLogger(__name__)

# The /imagine option allows the longest prompt any backend takes; each backend's own limit is checked before
# anything is sent.
LARGEST_PROMPT = max(facts.prompt_limit for facts in (USEAPI_FACTS, MJPROXY_FACTS))

Observer = Callable[[str, int], None]
Masker = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class OpenedBackend:
    """The backend the bot talks to, where it is, and how to close what was opened for it."""

    backend: Backend
    where: str  # its base URL, or the embedded simulator's
    simulated_reason: str | None  # why results are simulated (None: real Midjourney)
    close: Callable[[], Awaitable[None]]
    max_jobs: int
    simulator: object | None = None  # the embedded simulator, when there is one


def chosen_backend(settings: Settings) -> str:
    """The name of the backend the settings choose (the simulator is useapi's)."""
    return MJPROXY_FACTS.name if settings.backend == "mjproxy" else USEAPI_FACTS.name


async def _nothing() -> None:
    return None


async def open_backend(settings: Settings, session: aiohttp.ClientSession, *, observer: Observer | None = None,
                       mask: Masker | None = None, job_seconds: float = 6.0, timeout: float | None = None,
                       ) -> OpenedBackend:
    """Open the backend the settings choose; without its credentials, its embedded simulator (jobs of
    `job_seconds`, results that say they are simulated)."""
    call_timeout = settings.BACKEND_TIMEOUT_SECONDS if timeout is None else timeout
    if settings.backend == "mjproxy":
        return await _open_mjproxy(settings, session, observer, mask, job_seconds, call_timeout)
    return await _open_useapi(settings, session, observer, mask, job_seconds, call_timeout)


async def _open_useapi(settings: Settings, session: aiohttp.ClientSession, observer: Observer | None,
                       mask: Masker | None, job_seconds: float, timeout: float) -> OpenedBackend:
    discord_value = settings.USEAPI_DISCORD.get_secret_value() if settings.USEAPI_DISCORD else None
    if settings.USEAPI_TOKEN is not None and settings.backend != "simulator":
        client = UseapiClient(session, settings.USEAPI_BASE_URL, settings.USEAPI_TOKEN.get_secret_value(),
                              channel=settings.USEAPI_CHANNEL, discord=discord_value, observer=observer,
                              timeout=timeout)
        return OpenedBackend(UseapiBackend(client, mask=mask), settings.USEAPI_BASE_URL, None, _nothing,
                             settings.USEAPI_MAX_JOBS)
    # Imported here: a bot with a real backend never loads the simulators (their images and video need Pillow
    # and PyAV, megabytes of resident memory).
    from bot.backends.useapi.simulator import Simulator as UseapiSimulator  # noqa: PLC0415

    simulator = UseapiSimulator(token=None, job_seconds=job_seconds)
    await simulator.start("127.0.0.1", 0)
    client = UseapiClient(session, simulator.base_url, "simulated", channel=settings.USEAPI_CHANNEL,
                          discord=discord_value, observer=observer, timeout=timeout)
    reason = "the bot runs its embedded simulator (BACKEND=simulator)" if settings.backend == "simulator" \
        else "no `USEAPI_TOKEN` is set"
    log.warning("%s: jobs run on the embedded useapi SIMULATOR at %s; every result is simulated, not from "
                "Midjourney", reason.replace("`", ""), simulator.base_url)
    return OpenedBackend(UseapiBackend(client, simulated=True, mask=mask),
                         f"the embedded simulator at {simulator.base_url}", reason, simulator.close,
                         settings.USEAPI_MAX_JOBS, simulator)


async def _open_mjproxy(settings: Settings, session: aiohttp.ClientSession, observer: Observer | None,
                        mask: Masker | None, job_seconds: float, timeout: float) -> OpenedBackend:
    if settings.MJPROXY_URL is not None:
        token = settings.MJPROXY_TOKEN.get_secret_value() if settings.MJPROXY_TOKEN else None
        client = MjproxyClient(session, settings.MJPROXY_URL, token, auth_scheme=settings.MJPROXY_AUTH_SCHEME,
                               timeout=timeout, observer=observer)
        return OpenedBackend(MjproxyBackend(client, mask=mask), settings.MJPROXY_URL, None, _nothing,
                             settings.MJPROXY_MAX_JOBS)
    from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator  # noqa: PLC0415 - as above

    simulator = MjproxySimulator(token=None, job_seconds=job_seconds)
    await simulator.start("127.0.0.1", 0)
    client = MjproxyClient(session, simulator.base_url, None, timeout=timeout, observer=observer)
    log.warning("MJPROXY_URL is not set: jobs run on the embedded mj-proxy SIMULATOR at %s; every result is "
                "simulated, not from Midjourney", simulator.base_url)
    return OpenedBackend(MjproxyBackend(client, simulated=True, mask=mask),
                         f"the embedded mj-proxy simulator at {simulator.base_url}", "no `MJPROXY_URL` is set",
                         simulator.close, settings.MJPROXY_MAX_JOBS, simulator)
