"""The coordination of one SQLite process: the same seam as PostgreSQL's, done in the process itself.

An SQLite database has one bot at a time (the instance lock beside its file), so whatever another key holds was
held by an earlier start of this bot, which is certainly over: it is taken over at once. The claims still go
through the same columns (bot.store.claims), so that a database copied into PostgreSQL carries them on, and the
relay above runs one code path whatever the store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiosqlite

from bot.jobs import QUEUED, SUBMITTING, JobRecord
from bot.store.base import Picker
from bot.store.claims import claimable, needs_owner
from bot.store.records import decode_job
from bot.store.sqlite.fetch import fetch_all, fetch_one
from bot.store.sqlite.jobs import SqliteJobs


def new_key() -> int:
    """A process's key: random per start, positive, and within PostgreSQL's 32-bit lock keys (the same rule)."""
    return secrets.randbelow(2**31 - 2) + 1


class AlwaysHeld:
    """The gateway of the one process there is: held at once, never lost while the process lives."""

    def __init__(self) -> None:
        self._never = asyncio.Event()

    async def acquire(self) -> None:
        return None

    async def lost(self) -> None:
        await self._never.wait()

    async def release(self) -> None:
        return None


class SqliteCoordination:
    """Claims serialised by one lock in this process; wake-ups and pokes are calls in this process."""

    exclusive = True

    def __init__(self, db: aiosqlite.Connection, jobs: SqliteJobs, identity: str) -> None:
        self._db = db
        self._jobs = jobs
        self._identity = identity
        self.me = new_key()
        self.gateway = AlwaysHeld()
        self._claiming = asyncio.Lock()
        self._on_job: Callable[[int], None] = lambda _: None
        self._next_edit: dict[int, float] = {}

    async def _one(self, sql: str, values: tuple[Any, ...]) -> JobRecord | None:
        row = await fetch_one(self._db, sql, values)
        return decode_job(row, self._identity) if row else None

    async def start(self, on_wake: Callable[[], None], on_job: Callable[[int], None]) -> None:
        # Nobody else wakes this scheduler: a freed slot or a new job sets its wake event directly.
        self._on_job = on_job

    def wake_others(self) -> None:
        return None

    async def poke(self, owner: int, job_id: int) -> None:
        if owner == self.me:
            self._on_job(job_id)

    async def claim_next(self, *, capacity: int, now: float, until: float, pick: Picker) -> JobRecord | None:
        # One scheduler in one process: the lock only keeps two passes of it from overlapping.
        async with self._claiming:
            if await self._jobs.count_active() >= capacity:
                return None
            candidates = await self._jobs.next_queued(now)
            if not candidates:
                return None
            served = await self._jobs.last_served_of(job.owner_id for job in candidates)
            chosen = pick(candidates, served)
            return await self._one(
                f"UPDATE jobs SET status = ?, attempts = attempts + 1, submitted_at = ?, updated_at = ?, "  # noqa: S608
                f"claimed_by = ?, lease_until = ? WHERE id = ? AND status = ? AND {claimable('?')} RETURNING *",
                (SUBMITTING, now, now, self.me, until, chosen.id, QUEUED, self.me))

    async def hold(self, job_id: int, until: float) -> JobRecord | None:
        return await self._one(
            "UPDATE jobs SET claimed_by = ?, lease_until = ? WHERE id = ? AND (claimed_by IS NULL OR claimed_by = ?) "
            "RETURNING *", (self.me, until, job_id, self.me))

    async def renew(self, *, until: float, late_since: float) -> None:
        await self._db.execute(
            f"UPDATE jobs SET lease_until = ? WHERE claimed_by = ? AND lease_until IS NOT NULL "  # noqa: S608
            f"AND {needs_owner('?')}", (until, self.me, late_since))
        await self._db.execute(
            f"UPDATE jobs SET lease_until = NULL WHERE lease_until IS NOT NULL AND NOT {needs_owner('?')}",  # noqa: S608
            (late_since,))

    async def take_over(self, *, now: float, until: float, late_since: float) -> list[JobRecord]:
        # Any other key is an earlier start's: no lease of it needs to run out first.
        rows = await fetch_all(
            self._db, f"UPDATE jobs SET claimed_by = ?, lease_until = ? WHERE lease_until IS NOT NULL "  # noqa: S608
            f"AND claimed_by IS NOT ? AND {needs_owner('?')} RETURNING *", (self.me, until, self.me, late_since))
        return sorted((decode_job(row, self._identity) for row in rows), key=lambda job: job.id)

    async def let_go(self) -> None:
        await self._db.execute("UPDATE jobs SET lease_until = 0 WHERE claimed_by = ? AND lease_until IS NOT NULL",
                               (self.me,))

    async def claim_publish(self, job_id: int, *, now: float, until: float) -> bool:
        # Two publishes of one job in this process are already one at a time (its job lock).
        async with self._db.execute("UPDATE jobs SET publish_by = ?, publish_until = ? WHERE id = ? AND published = 0",
                                    (self.me, until, job_id)) as cur:
            return cur.rowcount == 1

    async def release_publish(self, job_id: int) -> None:
        await self._db.execute("UPDATE jobs SET publish_by = NULL WHERE id = ? AND publish_by = ?", (job_id, self.me))

    async def edit_turn(self, channel_id: int, interval: float, now: float) -> float:
        due = self._next_edit.get(channel_id, 0.0)
        if now < due:
            return due - now
        self._next_edit[channel_id] = now + interval
        return 0.0

    async def close(self) -> None:
        return None
