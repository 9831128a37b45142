"""Jobs changing hands between processes: this process's leases, renewed while it lives, and the jobs it takes
over from a process that is gone (or from an earlier start of its own), picked up where they were.

Every `interval / 2` the holder renews its leases (which last `1.5 × interval`) and looks for jobs nobody
alive holds: a process killed with `kill -9` loses them as soon as the database sees its session end, a
stalled one when its leases run out, so its running and queued jobs are followed again within two poll
intervals, without a human.

A job taken over is picked up as a restart picks up its own: a queued one keeps its place; a running one is
read from the backend at once (its callbacks may have gone to the process that died); a finished one is
published by the poll; one caught being sent is looked for at the backend before it is sent again, so the
backend never gets a second copy. Where another process may still be sending it (PostgreSQL: it may be
alive, only cut off), that look waits until the call it may have in flight has certainly ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot import messages
from bot.jobs import HELD, QUEUED, RUNNING, SUBMITTING, UNFINISHED_STATES, ErrorKind, JobRecord
from bot.relay.display import Display
from bot.relay.polling import LATE_WINDOW_SECONDS, Poller
from bot.relay.submission import Submission
from bot.relay.tasks import JobLocks, Tasks
from bot.relay.updates import Updates
from bot.store import Store

log = logging.getLogger(__name__)

LEASE_INTERVALS = 1.5  # a lease lasts this many poll intervals
PASSES_PER_INTERVAL = 2  # renewals (and looks for jobs to take over) per poll interval
# The backend calls a submission may make in a row (a press, its prompt, a look-up before a resend): how long
# after a job's submission began another process may still be sending it.
CALLS_IN_A_SUBMISSION = 3
GRACE_MARGIN_SECONDS = 5.0


class Leases:
    """The lease loop and the pick-up of jobs taken over."""

    def __init__(self, *, store: Store, submission: Submission, updates: Updates, display: Display, poller: Poller,
                 locks: JobLocks, tasks: Tasks, wake: asyncio.Event, backend_name: str, interval: float,
                 call_timeout: float) -> None:
        self._store = store
        self._coordination = store.coordination
        self._submission = submission
        self._updates = updates
        self._display = display
        self._poller = poller
        self._locks = locks
        self._tasks = tasks
        self._wake = wake
        self._backend_name = backend_name
        self._lease = LEASE_INTERVALS * interval
        self._period = interval / PASSES_PER_INTERVAL
        self._grace = CALLS_IN_A_SUBMISSION * call_timeout + GRACE_MARGIN_SECONDS
        self._stopping = asyncio.Event()

    def until(self) -> float:
        """When a lease taken now ends."""
        return time.time() + self._lease

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._period)
            if self._stopping.is_set():
                return
            try:
                late_since = time.time() - LATE_WINDOW_SECONDS
                await self._coordination.renew(until=self.until(), late_since=late_since)
                taken = await self.take_over()
                if taken:
                    await self.pick_up(taken)
            except Exception:
                log.exception("lease pass failed")

    async def take_over(self) -> list[JobRecord]:
        now = time.time()
        taken = await self._coordination.take_over(now=now, until=now + self._lease,
                                                   late_since=now - LATE_WINDOW_SECONDS)
        if taken and not self._coordination.exclusive:
            log.info("took over %d job(s) no live process held: %s", len(taken),
                     ", ".join(f"{job.id} ({job.status})" for job in taken))
        return taken

    async def pick_up(self, taken: list[JobRecord], *, read_now: bool = True) -> None:
        """Carry on with jobs this process now holds, each from where it stood (the running ones read at once
        unless `read_now` is False: at a start, the first poll pass reads every one anyway)."""
        cut_short: list[JobRecord] = []
        for job in taken:
            if job.status in UNFINISHED_STATES and job.backend != self._backend_name:
                # Sent through (or meant for) a backend this bot no longer uses: nobody will ever finish it here.
                async with self._locks(job.id):
                    await self._updates.fail(job, messages.backend_gone(job.backend), ErrorKind.UNSUPPORTED)
            elif job.status == SUBMITTING:
                wait = self._in_flight_for(job)
                if wait > 0:
                    self._tasks.spawn(self._later(job, wait), f"take-over-{job.id}")
                elif job.backend_job_id is not None:
                    # Its press's first step was made (the job waits for its prompt there): give the prompt now.
                    self._submission.resume(job)
                else:
                    cut_short.append(job)
            elif job.status == QUEUED and job.not_before >= HELD:
                # Its filer stopped between filing it and keeping its images: sending it without them would
                # spend Midjourney time on the wrong job.
                async with self._locks(job.id):
                    await self._updates.fail(job, messages.FILING_CUT_SHORT, ErrorKind.CANCELLED)
            elif job.status == QUEUED:
                await self._show(job)
        await self._resend_unless_found(cut_short)
        # Finished ones are published by the next poll pass.
        if read_now:
            await self._poller.poll_jobs([job for job in taken if job.status == RUNNING])

    def _in_flight_for(self, job: JobRecord) -> float:
        """Seconds the process that was sending `job` may still be at it (0 where it certainly is not)."""
        if self._coordination.exclusive or job.submitted_at is None:
            return 0.0
        return max(0.0, job.submitted_at + self._grace - time.time())

    async def _later(self, job: JobRecord, wait: float) -> None:
        log.info("job %d: taken over while being sent; looking for it at the backend in %.0fs", job.id, wait)
        await asyncio.sleep(wait)
        fresh = await self._store.jobs.get(job.id)
        if fresh is not None and fresh.status == SUBMITTING and fresh.claimed_by == self._coordination.me:
            if fresh.backend_job_id is not None:
                self._submission.resume(fresh)
            else:
                await self._resend_unless_found([fresh])

    async def _resend_unless_found(self, cut: list[JobRecord]) -> None:
        resend = await self._submission.adopt_cut_short(cut)
        for job in resend:
            # The backend is not running it: send it again. A one-shot button answers "already done" with the
            # existing job, which is adopted; the reference lets a late callback match.
            await self._store.jobs.requeue(job.id, time.time())
        if resend:
            # Back in the queue: a scheduler with nothing else to do would only look again when it next idles.
            self._wake.set()
        for job in cut:
            await self._show(job)

    async def _show(self, job: JobRecord) -> None:
        """Post the working message of a job that has none (its filing was cut short)."""
        async with self._locks(job.id):
            fresh = await self._store.jobs.get(job.id)
            if fresh is not None and fresh.message_id is None and not fresh.is_final:
                await self._display.show(fresh)
