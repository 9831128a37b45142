"""The shared Midjourney account: the pause while it needs a human, and admin alerts once per episode.

A backend answering "needs a human" (useapi's 596: a moderation message or a CAPTCHA on the account) stops
every submission at once, because each further call would only fail; the pause outlives a restart and lifts
after an admin's `/relay reset`, or by itself once the backend shows the account clear. Both live in the store:
every process sharing the database pauses with the first that meets the 596, and admins hear once whichever
process meets a problem first.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot import messages
from bot.backends.base import Backend, BackendError
from bot.jobs import ErrorKind, Pause
from bot.relay.display import Display
from bot.relay.shared import Shared
from bot.store import Store

log = logging.getLogger(__name__)


class PauseState:
    """Whether submissions are paused, and why, as this process last read it; read by the display for the
    cards of waiting jobs."""

    def __init__(self, store: Store, shared: Shared) -> None:
        self._store = store
        self._shared = shared

    @property
    def current(self) -> Pause | None:
        return self._shared.state.pause

    async def load(self) -> None:
        await self._shared.refresh()

    @property
    def reason(self) -> str | None:
        return self.current.reason if self.current else None

    async def set(self, pause: Pause | None) -> None:
        await self._store.state.set_pause(pause)
        await self._shared.written()


class Alerts:
    """Account-wide alerts already sent, by (kind, server), in the store: admins hear once per episode of a
    problem, not per job nor per process."""

    def __init__(self, store: Store, display: Display) -> None:
        self._store = store
        self._display = display

    async def once(self, kind: ErrorKind, guild_id: int | None, text: str) -> None:
        if not await self._store.state.alert_once(str(kind), guild_id, time.time()):
            return
        admin_channel = None
        if guild_id is not None:
            admin_channel = (await self._store.teams.guild_settings(guild_id)).admin_channel_id
        await self._display.publisher.alert_admins(guild_id, admin_channel, text)

    async def over(self, *kinds: ErrorKind) -> None:
        """The problem went away: a later one is a new episode worth telling admins about."""
        await self._store.state.alerts_over(str(kind) for kind in kinds)


class AccountGuard:
    """Pauses and resumes submissions for the account's sake."""

    def __init__(self, backend: Backend, store: Store, display: Display, pause: PauseState, alerts: Alerts,
                 *, account: str | None, wake: asyncio.Event) -> None:
        self._backend = backend
        self._store = store
        self._display = display
        self.pause_state = pause
        self.alerts = alerts
        self._account = account  # the account the operator configured (USEAPI_CHANNEL), if any
        self._wake = wake

    @property
    def paused_reason(self) -> str | None:
        return self.pause_state.reason

    async def pause(self, error: BackendError, guild_id: int | None) -> None:
        """Stop every submission at once (every process's): each further call would only fail the same way.

        Every waiting job's working message then says why it waits: each process shows it on the cards it holds
        once it reads the pause (bot.relay.facade)."""
        facts = self._backend.facts
        await self.pause_state.load()  # another process may have paused already
        current = self.pause_state.current
        if current is None:
            await self.pause_state.set(Pause(messages.explain(error, facts).public, error.account))
            log.warning("%s reports the account needs a human: submissions paused", facts.label)
        elif error.account and current.channel != error.account:
            await self.pause_state.set(Pause(current.reason, error.account))
        await self.alerts.once(ErrorKind.NEEDS_HUMAN, guild_id, messages.admin_alert(error, facts))

    async def resume(self) -> None:
        """Lift a pause (after /relay reset, or once the account shows clear again)."""
        if self.pause_state.current is not None:
            log.info("submissions resumed")
        await self.pause_state.set(None)
        await self.alerts.over(ErrorKind.NEEDS_HUMAN)
        self._wake.set()

    async def reset(self) -> list[str]:
        """An admin's reset: clear what waits for a human on the account(s), then resume; the accounts reset.

        The account is the configured one, else the one the backend named when it paused us, else every
        account that shows something waiting. Raises the backend's error when a reset fails.
        """
        current = self.pause_state.current
        if self._account:
            names = [self._account]
        elif current is not None and current.channel:
            names = [current.channel]
        else:
            accounts = await self._backend.accounts()
            names = [a.name for a in accounts if a.needs_human] or [a.name for a in accounts]
        for name in names:
            await self._backend.reset(name)
            log.info("%s account %s reset by an admin", self._backend.facts.label, name)
        await self.resume()
        return names

    async def check(self) -> bool:
        """While paused, resume once the backend shows the account clear; True if resumed.

        The bot only looks: clearing the message is a human's job (and an admin's /relay reset).
        """
        current = self.pause_state.current
        if current is None:
            return False
        try:
            accounts = {a.name: a for a in await self._backend.accounts()}
        except BackendError as exc:
            log.info("account check failed (%s); still paused", exc.kind.value)
            return False
        watched = ([current.channel] if current.channel in accounts else
                   [self._account] if self._account in accounts else list(accounts))
        if not watched or any(accounts[name].needs_human for name in watched):
            return False
        log.info("%s shows the Midjourney account clear again", self._backend.facts.label)
        await self.resume()
        return True
