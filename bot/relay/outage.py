"""Backing off from a backend that does not answer: the one backoff formula, and the relay-wide outage.

A backend outage (no answer, a timeout, a server error) is one relay-wide backoff: every poll and lookup, in
every process, waits for the same moment, so the backend is asked once per round rather than once per job,
and queued jobs keep their order instead of each retrying on its own clock.
"""

from __future__ import annotations

import logging
import random
import time

from bot.jobs import OutageState
from bot.relay.shared import Shared
from bot.store import Store

log = logging.getLogger(__name__)


def backoff(base: float, cap: float, attempt: int) -> float:
    """Seconds to wait before try `attempt` + 1: doubling from `base` up to `cap`, the later half jittered, so
    many jobs hit by one outage do not come back in step."""
    delay = min(cap, base * float(2 ** min(max(attempt, 1) - 1, 30)))
    return delay / 2 + random.uniform(0, delay / 2)


def next_round(seen: OutageState, now: float, base: float, cap: float) -> OutageState | None:
    """The outage after a failed call at `now`: a new round when the last one is over (or none began), else
    None, since calls already in flight when this round began do not count twice."""
    if seen.since is not None and now < seen.retry_at:
        return None
    rounds = seen.round + 1
    return OutageState(now if seen.since is None else seen.since, rounds, now + backoff(base, cap, rounds))


class Outage:
    """Whether the backend is answering, as every process on the database sees it (the store's outage row,
    read through `shared`): one backoff for all, so a backend that is down is asked once per round, not once
    per process. Each process's cards get their note when it reads the change (bot.relay.facade)."""

    def __init__(self, label: str, base: float, cap: float, store: Store, shared: Shared) -> None:
        self._label = label
        self._base = base
        self._cap = cap
        self._store = store
        self._shared = shared

    @property
    def waiting(self) -> bool:
        """True while the backend is down and the next round has not come yet."""
        return time.time() < self._shared.state.outage.retry_at

    async def failed(self, why: str) -> None:
        """A call got no usable answer: hold off for the next round of the backoff."""
        seen = self._shared.state.outage
        new = next_round(seen, time.time(), self._base, self._cap)
        if new is None:
            return
        # Of processes failing at once, one moves the round on; the others take in what it wrote.
        if await self._store.state.set_outage(new, expect=seen) and seen.since is None:
            log.warning("%s is not answering (%s); polls back off until it does", self._label, why)
        await self._shared.refresh()

    async def answered(self) -> None:
        seen = self._shared.state.outage
        if seen.since is None:
            return  # the common case costs nothing
        if await self._store.state.set_outage(OutageState(), expect=seen):
            log.info("%s answers again after %.1fs", self._label, time.time() - seen.since)
        await self._shared.refresh()
