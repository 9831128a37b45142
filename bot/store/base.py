"""What every store dialect raises, beside the records of `bot.jobs`."""

from __future__ import annotations

from bot.jobs import JobRecord


class StoreError(Exception):
    """The database cannot be used; the message names it and says what is wrong, fit to print."""


class OneShotTaken(Exception):
    """A one-shot button (U1..U4) already has a job waiting, running or done on that parent."""

    def __init__(self, existing: JobRecord | None) -> None:
        super().__init__(f"already taken by job {existing.id}" if existing else "already taken")
        self.existing = existing
