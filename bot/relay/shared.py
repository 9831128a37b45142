"""The relay-wide state every process on the database decides by: the account's pause, the reduced concurrency
after an untrackable job, and the outage backoff.

It lives in the store (one row), not in a process: a pause one process meets stops every process's
submissions, a halving one process decides halves the slots of all. Each process reads it before each
scheduler pass and poll pass (and when another wakes it), and tells its own parts what changed since it last
looked, so that each updates the cards of the jobs it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.jobs import SharedState
from bot.relay.tasks import Wake
from bot.store import Store

log = logging.getLogger(__name__)

Observer = Callable[[SharedState, SharedState], None]


class Shared:
    """The last state read, and who wants to hear when it changes."""

    def __init__(self, store: Store, wake: Wake) -> None:
        self._store = store
        self._wake = wake
        self.state = SharedState()
        self._observers: list[Observer] = []
        self._loaded = False

    def observe(self, observer: Observer) -> None:
        """Call `observer(before, after)` whenever a read finds the state changed (not at the first read: what
        the cards show already reflects the state a start finds)."""
        self._observers.append(observer)

    async def refresh(self) -> SharedState:
        new = await self._store.state.shared()
        old, self.state = self.state, new
        if self._loaded and new != old:
            for observer in self._observers:
                observer(old, new)
        self._loaded = True
        return new

    async def written(self) -> None:
        """This process changed the state: take it in, and have every scheduler (here and elsewhere) look again."""
        await self.refresh()
        self._wake.set()
