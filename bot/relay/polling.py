"""Polling: re-reading jobs the backend has not told us about lately, timing out stuck ones, and retrying
results Discord did not take yet.

Without callbacks (no PUBLIC_URL) polling follows every running job; with them, only the jobs whose callbacks
stopped coming. One request a pass where the backend can read many jobs at once. Each process polls the jobs
it holds (bot.store.claims): several processes on one database never ask twice about one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot import messages
from bot.backends.base import Backend, BackendError
from bot.jobs import LATE_COMPLETION_KINDS, RUNNING, ErrorKind, JobRecord
from bot.relay.account import AccountGuard
from bot.relay.display import Display
from bot.relay.shared import Shared
from bot.relay.tasks import JobLocks
from bot.relay.updates import Updates
from bot.store import Store

log = logging.getLogger(__name__)

# With callbacks on, a job is polled only after this many poll intervals without one.
QUIET_INTERVALS = 3
LATE_WINDOW_SECONDS = 3600.0  # a job marked failed this recently may still have its result come in


class Poller:
    """The poll loop."""

    def __init__(self, *, store: Store, backend: Backend, updates: Updates, account: AccountGuard,
                 display: Display, locks: JobLocks, shared: Shared, wake: asyncio.Event, interval: float,
                 timeout_minutes: float, callbacks: bool) -> None:
        self._store = store
        self._coordination = store.coordination
        self._shared = shared
        self._backend = backend
        self._updates = updates
        self._account = account
        self._display = display
        self._locks = locks
        self._wake = wake
        self._interval = interval
        self._timeout_minutes = timeout_minutes
        self._callbacks = callbacks
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                # The first pass after a start re-reads every running job: callbacks sent while the bot was
                # down are lost (backends do not retry them).
                await self.poll_once(everything=first)
                first = False
            except Exception:
                log.exception("poll pass failed")
            # Waiting on the stop event, not sleeping, lets stop() end the loop between passes at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def poll_once(self, *, everything: bool = False) -> None:
        """One pass: the account while paused, due jobs, stuck jobs, and results not shown yet."""
        now = time.time()
        quiet = self._interval if not self._callbacks else QUIET_INTERVALS * self._interval
        timeout = self._timeout_minutes * 60
        jobs = self._store.jobs
        me = self._coordination.me
        # The pause and the outage as every process sees them now.
        await self._shared.refresh()
        # While paused only the account is asked about: every job call would be refused the same way.
        await self._account.check()
        # Filtered in SQL: a long history holds many failed jobs, and this runs every poll interval.
        name = self._backend.facts.name
        late = await jobs.late_failures(name, LATE_COMPLETION_KINDS, since=now - LATE_WINDOW_SECONDS, claimed_by=me)
        due: list[JobRecord] = []
        for job in await jobs.in_states((RUNNING,), backend=name, claimed_by=me) + late:
            if self._stopping.is_set():
                return
            # A job adopted after a restart was never submitted by this process: count from its filing.
            since = job.submitted_at if job.submitted_at is not None else job.created_at
            if job.status == RUNNING and now - since > timeout:
                async with self._locks(job.id):
                    fresh = await jobs.get(job.id)
                    if fresh is not None and fresh.status == RUNNING:
                        await self._time_out(fresh)
                continue
            if not everything and job.last_event_at is not None and now - job.last_event_at < quiet:
                continue
            if self._account.paused_reason is None and job.backend_job_id is not None:
                due.append(job)
        if due and not self._updates.outage.waiting:
            await self._poll(due)
        for job in await jobs.unpublished_final(claimed_by=me):
            async with self._locks(job.id):
                fresh = await jobs.get(job.id)
                if fresh is not None:
                    await self._display.publish(fresh)

    async def poll_jobs(self, jobs: list[JobRecord]) -> None:
        """Read these jobs now, whatever their last event (jobs taken over from a process gone: their callbacks
        may have gone to it)."""
        due = [job for job in jobs if job.status == RUNNING and job.backend_job_id is not None]
        if due and self._account.paused_reason is None and not self._updates.outage.waiting:
            await self._poll(due)

    async def _poll(self, due: list[JobRecord]) -> None:
        ids = [job.backend_job_id for job in due if job.backend_job_id]
        try:
            found = await self._backend.get_many(ids)
        except BackendError as exc:
            if exc.kind is ErrorKind.NEEDS_HUMAN:
                await self._account.pause(exc, due[0].guild_id)
                return
            await self._updates.backend_failed(exc)
            log.info("poll of %d jobs failed (%s); will try again", len(ids), exc.kind.value)
            return
        await self._updates.backend_answered()
        facts = self._backend.facts
        for job in due:
            truth = found.get(job.backend_job_id or "")
            async with self._locks(job.id):
                fresh = await self._store.jobs.get(job.id)
                if fresh is None or fresh.backend_job_id != job.backend_job_id:
                    continue
                if truth is None:
                    if fresh.status == RUNNING:
                        gone = BackendError(ErrorKind.NOT_FOUND, "not found when polled")
                        await self._updates.fail(fresh, messages.explain(gone, facts), ErrorKind.NOT_FOUND)
                    continue
                await self._updates.apply(fresh, truth)

    async def _time_out(self, job: JobRecord) -> None:
        """Fail a job that stayed running far longer than Midjourney takes, freeing its slot (lock held)."""
        log.warning("job %d: still running after %g minutes; marked failed", job.id, self._timeout_minutes)
        await self._updates.fail(job, messages.timed_out(self._timeout_minutes), ErrorKind.TIMED_OUT)
        self._wake.set()
