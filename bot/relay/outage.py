"""Backing off from a backend that does not answer: the one backoff formula, and the relay-wide outage.

A backend outage (no answer, a timeout, a server error) is one relay-wide backoff: every poll and lookup
waits for the same moment, so the backend is asked once per round rather than once per job, and queued
jobs keep their order instead of each retrying on its own clock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def backoff(base: float, cap: float, attempt: int) -> float:
    """Seconds to wait before try `attempt` + 1: doubling from `base` up to `cap`, the later half jittered, so
    many jobs hit by one outage do not come back in step."""
    delay = min(cap, base * float(2 ** min(max(attempt, 1) - 1, 30)))
    return delay / 2 + random.uniform(0, delay / 2)


class Outage:
    """Whether the backend is answering; `on_change(True)` when it stops, `on_change(False)` when it is back."""

    def __init__(self, label: str, base: float, cap: float, on_change: Callable[[bool], None]) -> None:
        self._label = label
        self._base = base
        self._cap = cap
        self._on_change = on_change
        self._since: float | None = None
        self._round = 0
        self._retry_at = 0.0

    @property
    def waiting(self) -> bool:
        """True while the backend is down and the next round has not come yet."""
        return time.time() < self._retry_at

    def failed(self, why: str) -> None:
        """A call got no usable answer: hold off for the next round of the backoff."""
        now = time.time()
        if self._since is None:
            self._since = now
            log.warning("%s is not answering (%s); polls back off until it does", self._label, why)
            self._on_change(True)
        if now >= self._retry_at:
            # A new round: calls that were already in flight when the last round began do not count twice.
            self._round += 1
            self._retry_at = now + backoff(self._base, self._cap, self._round)

    def answered(self) -> None:
        if self._since is not None:
            log.info("%s answers again after %.1fs", self._label, time.time() - self._since)
            self._on_change(False)
        self._since = None
        self._round = 0
        self._retry_at = 0.0
