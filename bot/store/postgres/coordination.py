"""How several bot processes share one PostgreSQL database's work, with the database's own means.

- A slot: every claim runs in one transaction under one advisory transaction lock (SLOTS_LOCK), counts the jobs
  holding a slot across all processes, applies the fair share to the candidates and marks the chosen job, so
  two processes never exceed the backend's max jobs and never take the same job. The job picked is taken once
  its filer posted its working message (or by its holder): only one process posts that first message, and
  a turn is never skipped: the filer takes it itself, or another once the message is up.
- Who follows a job: `claimed_by`/`lease_until` (bot.store.claims), renewed by the holder; a job whose lease ran
  out, or whose holder's session lock is gone (ALIVE_SQL), is taken over with FOR UPDATE SKIP LOCKED, so of two
  processes looking at once each job goes to one. One nobody holds is being filed, unless it is older than
  FILING_SECONDS: its filer died before holding it.
- Waking: NOTIFY on relay_wake (a slot freed, a job queued) and relay_job (a job changed that another process
  holds), heard on each process's session connection (bot.store.postgres.session).
- Publishing once: a claim (`publish_by`/`publish_until`) taken before a result is posted, released after; one
  left by a process that died stops counting at once, one left by a stalled process when it runs out.
- The per-channel edit budget: one row per channel in `edit_turns`, taken by a guarded upsert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from bot.jobs import ACTIVE_STATES, QUEUED, SUBMITTING, JobRecord
from bot.store.base import Picker
from bot.store.claims import FILING_SECONDS, claimable, needs_owner
from bot.store.postgres.connect import SERVER_ERRORS, Pool, changed
from bot.store.postgres.jobs import PostgresJobs
from bot.store.postgres.session import ALIVE_SQL, JOB_CHANNEL, SLOTS_LOCK, WAKE_CHANNEL, PgGateway, Session

log = logging.getLogger(__name__)

# Each owner's oldest ready job ($1 queued, $2 now): the fair share's candidates.
CANDIDATES_SQL: Final = """SELECT * FROM jobs WHERE id IN (
        SELECT MIN(id) FROM jobs WHERE status = $1 AND not_before <= $2 GROUP BY owner_id
    ) ORDER BY id"""
CLAIM_SQL: Final = f"""UPDATE jobs SET status = $1, attempts = attempts + 1, submitted_at = $2, updated_at = $2,
                           claimed_by = $3, lease_until = $4 WHERE id = $5 AND status = $6 AND {claimable('$3')}
                       RETURNING *"""  # noqa: S608 - our constants
TAKE_OVER_SQL: Final = f"""
    WITH taken AS (
        SELECT id FROM jobs WHERE lease_until IS NOT NULL AND claimed_by IS DISTINCT FROM $1
            AND CASE WHEN claimed_by IS NULL THEN updated_at < $2 - {FILING_SECONDS}
                     ELSE lease_until < $2 OR claimed_by NOT IN ({ALIVE_SQL}) END
            AND {needs_owner('$4')}
        ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs SET claimed_by = $1, lease_until = $3 FROM taken WHERE jobs.id = taken.id RETURNING jobs.*"""  # noqa: S608 - our constants
PUBLISH_SQL: Final = f"""UPDATE jobs SET publish_by = $1, publish_until = $2 WHERE id = $3 AND NOT published
    AND (publish_by IS NULL OR publish_by = $1 OR publish_until < $4 OR publish_by NOT IN ({ALIVE_SQL}))"""  # noqa: S608 - our constants
EDIT_TURN_SQL: Final = """INSERT INTO edit_turns (channel_id, next_at)
    VALUES ($1, $2::double precision + $3::double precision)
    ON CONFLICT (channel_id) DO UPDATE SET next_at = EXCLUDED.next_at WHERE edit_turns.next_at <= $2
    RETURNING next_at"""


class PostgresCoordination:
    """One process's part in the coordination: its session (started by `start`), claims through the pool."""

    exclusive = False

    def __init__(self, pool: Pool, url: str, jobs: PostgresJobs) -> None:
        self._pool = pool
        self._jobs = jobs
        self._on_wake: Callable[[], None] = lambda: None
        self._on_job: Callable[[int], None] = lambda _: None
        self._session = Session(url, self._heard, self._heard_again)
        self.gateway = PgGateway(self._session)
        self._started = False
        self._waking: asyncio.Task[None] | None = None
        self._wake_again = False

    @property
    def me(self) -> int:
        return self._session.me

    def _heard_again(self) -> None:
        self._on_wake()

    async def start(self, on_wake: Callable[[], None], on_job: Callable[[int], None]) -> None:
        self._on_wake, self._on_job = on_wake, on_job
        if not self._started:
            await self._session.open()
            self._started = True

    def _heard(self, channel: str, payload: str) -> None:
        if channel == WAKE_CHANNEL:
            if payload != str(self.me):
                self._on_wake()
            return
        owner, _, job = payload.partition(":")
        if owner == str(self.me) and job.isdigit():
            self._on_job(int(job))

    def wake_others(self) -> None:
        # Many wake-ups in one moment (a burst of filings, a slot freed while another is taken) send one NOTIFY;
        # one asked for while a NOTIFY is on its way is sent after it, so no change goes unannounced.
        if not self._started:
            return
        self._wake_again = True
        if self._waking is None or self._waking.done():
            self._waking = asyncio.get_running_loop().create_task(self._announce(), name="pg-wake-others")

    async def _announce(self) -> None:
        while self._wake_again:
            self._wake_again = False
            await self._notify(WAKE_CHANNEL, str(self.me))

    async def _notify(self, channel: str, payload: str) -> None:
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", channel, payload)
        except SERVER_ERRORS as exc:
            # Not heard: the others' own passes (every few seconds) still find the work.
            log.info("could not notify the other processes (%s)", type(exc).__name__)

    async def poke(self, owner: int, job_id: int) -> None:
        if owner == self.me:
            self._on_job(job_id)
        else:
            await self._notify(JOB_CHANNEL, f"{owner}:{job_id}")

    async def claim_next(self, *, capacity: int, now: float, until: float, pick: Picker) -> JobRecord | None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Every claim of every process passes here one at a time: the count below cannot go stale before
            # the chosen job is marked.
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *SLOTS_LOCK)
            # The claim's moment is when the lock is held: one stamped with the time its process began to wait
            # would look served before a claim made meanwhile, and the fair share would give its owner the next
            # turn too.
            now = max(now, time.time())
            active = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE status = ANY($1::text[])",
                                         sorted(ACTIVE_STATES))
            if int(active) >= capacity:
                return None
            candidates = [self._jobs.decode(row) for row in await conn.fetch(CANDIDATES_SQL, QUEUED, now)]
            if not candidates:
                return None
            served = await self._jobs.last_served_of({job.owner_id for job in candidates}, conn)
            chosen = pick(candidates, served)
            row = await conn.fetchrow(CLAIM_SQL, SUBMITTING, now, self.me, until, chosen.id, QUEUED)
            return self._jobs.decode(row) if row else None

    async def hold(self, job_id: int, until: float) -> JobRecord | None:
        row = await self._pool.fetchrow(
            "UPDATE jobs SET claimed_by = $1, lease_until = $2 WHERE id = $3 "
            "AND (claimed_by IS NULL OR claimed_by = $1) RETURNING *", self.me, until, job_id)
        return self._jobs.decode(row) if row else None

    async def renew(self, *, until: float, late_since: float) -> None:
        await self._pool.execute(
            f"UPDATE jobs SET lease_until = $1 WHERE claimed_by = $2 AND lease_until IS NOT NULL "  # noqa: S608
            f"AND {needs_owner('$3')}", until, self.me, late_since)
        await self._pool.execute(
            f"UPDATE jobs SET lease_until = NULL WHERE lease_until IS NOT NULL AND NOT {needs_owner('$1')}",  # noqa: S608
            late_since)

    async def take_over(self, *, now: float, until: float, late_since: float) -> list[JobRecord]:
        rows = await self._pool.fetch(TAKE_OVER_SQL, self.me, now, until, late_since)
        return sorted((self._jobs.decode(row) for row in rows), key=lambda job: job.id)

    async def let_go(self) -> None:
        await self._pool.execute("UPDATE jobs SET lease_until = 0 WHERE claimed_by = $1 AND lease_until IS NOT NULL",
                                 self.me)

    async def claim_publish(self, job_id: int, *, now: float, until: float) -> bool:
        return changed(await self._pool.execute(PUBLISH_SQL, self.me, until, job_id, now)) == 1

    async def release_publish(self, job_id: int) -> None:
        await self._pool.execute("UPDATE jobs SET publish_by = NULL WHERE id = $1 AND publish_by = $2", job_id, self.me)

    async def edit_turn(self, channel_id: int, interval: float, now: float) -> float:
        if await self._pool.fetchval(EDIT_TURN_SQL, channel_id, now, interval) is not None:
            return 0.0
        due = await self._pool.fetchval("SELECT next_at FROM edit_turns WHERE channel_id = $1", channel_id)
        # A turn that came due in between is taken at the next try, a moment later.
        return max(float(due or 0.0) - now, 0.01)

    async def close(self) -> None:
        if self._waking is not None:
            await asyncio.gather(self._waking, return_exceptions=True)
        await self._session.close()
