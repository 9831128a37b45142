"""Submission: handing the free Midjourney slots out fairly, sending each job, and the answer ladder.

Never more jobs at the backend than its slots (halved for a while after the backend says Midjourney queued
one where it cannot follow it); the next job is the fair share's pick; every refusal is decided by its kind.
The slots are counted, and the pick made, in the store's claim (bot.store.base.Coordinator.claim_next), so
they hold across every process on the database; the halving is in the store too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from bot import messages
from bot.backends.base import Backend, BackendError, BackendStatus, Button, JobUpdate
from bot.jobs import DUPLICATE, MODERATED, RUNNING, SUBMITTING, ErrorKind, JobRecord
from bot.relay.account import AccountGuard
from bot.relay.display import Display
from bot.relay.fairshare import pick
from bot.relay.images import ImageLinks
from bot.relay.intake import BLEND, DESCRIBE
from bot.relay.outage import backoff
from bot.relay.shared import Shared
from bot.relay.tasks import JobLocks, Tasks
from bot.relay.updates import OUTAGE_KINDS, Updates, parse_ref
from bot.store import Store

log = logging.getLogger(__name__)

# After an untrackable job (useapi's 504) the backend advises fewer parallel jobs "for the next several minutes".
REDUCED_CONCURRENCY_SECONDS = 300.0
# A submission that crashed is queued again after this long.
CRASH_RETRY_SECONDS = 60.0
TIMED_OUT = "timed out"  # the error a job is queued again with after its call timed out
IDLE_WAIT = 30.0
REGION_LOST = "The region to redraw was not kept, so nothing was sent. Press Vary (Region) again."
IMAGE_LOST = "The image to describe was not kept, so nothing was sent. Please give it to `/describe` again."


class Retries:
    """The backend-neutral retry settings: the wait after 'busy', and the tries and backoff when unreachable."""

    def __init__(self, busy_seconds: float, attempts: int, base: float, cap: float) -> None:
        self.busy_seconds = busy_seconds
        self.attempts = attempts
        self.base = base
        self.cap = cap


class Submission:
    """The scheduler and the answer ladder."""

    def __init__(self, *, store: Store, backend: Backend, display: Display, updates: Updates, account: AccountGuard,
                 shared: Shared, locks: JobLocks, tasks: Tasks, wake: asyncio.Event, max_jobs: int,
                 retries: Retries, lease: Callable[[], float], images: ImageLinks) -> None:
        self._store = store
        self._backend = backend
        self._display = display
        self._updates = updates
        self._account = account
        self._shared = shared
        self._locks = locks
        self._tasks = tasks
        self._wake = wake
        self.max_jobs = max_jobs
        self._retries = retries
        self._images = images
        self._lease = lease  # when a lease taken now ends
        self._closing = False

    @property
    def _reduced_until(self) -> float:
        return self._shared.state.reduced_until

    def capacity(self) -> int:
        """Midjourney slots the relay may use now, all processes together: the backend's max jobs, halved for a
        while after an untrackable job."""
        slots = self.max_jobs
        if time.time() < self._reduced_until:
            slots = max(1, slots // 2)
        return slots

    def stop(self) -> None:
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                await self.dispatch_ready()
                await self._display.refresh_places()
            except Exception:
                log.exception("scheduler pass failed")
            timeout = IDLE_WAIT
            # With every slot taken, only a freed slot (or a new job) can change anything, and both set the wake
            # event: waiting on a job's not_before then would spin over a backlog.
            if self._account.paused_reason is None and await self._store.jobs.count_active() < self.capacity():
                soonest = await self._store.jobs.earliest_not_before()
                if soonest is not None:
                    timeout = min(timeout, max(0.05, soonest - time.time()))
            if self._reduced_until > time.time():
                # Full capacity comes back when the window ends; nothing else would wake us for it.
                timeout = min(timeout, max(0.05, self._reduced_until - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def dispatch_ready(self) -> None:
        # The pause and the halving as every process sees them now (another may have met a 596 or a 504).
        await self._shared.refresh()
        if self._account.paused_reason is not None:
            return
        claim = self._store.coordination.claim_next
        while True:
            job = await claim(capacity=self.capacity(), now=time.time(), until=self._lease(), pick=pick)
            if job is None:
                # No slot, no job, or the one picked changed meanwhile (cancelled): that change woke us again.
                return
            self._tasks.spawn(self._submit(job), f"submit-{job.id}")

    def resume(self, job: JobRecord) -> None:
        """Carry on with a job whose submission a crash cut short after its first step."""
        self._tasks.spawn(self._submit(job), f"resume-{job.id}")

    def reference_problem(self, job: JobRecord | None = None) -> str | None:
        """Why the backend would refuse this bot's callback URL or a job's reference (too long), or None."""
        facts = self._backend.facts
        ref = job.ref if job is not None else f"{self._store.identity}-{10**18}"
        url = self._updates.urls.for_ref(ref) or ""
        if len(url) > facts.callback_limit:
            return messages.reference_too_long(facts, len(url), url=True)
        if len(ref) > facts.ref_limit:
            return messages.reference_too_long(facts, len(ref), url=False)
        return None

    async def adopt_cut_short(self, cut: Sequence[JobRecord]) -> list[JobRecord]:
        """Adopt the jobs the backend accepted just before a crash cut their submission short; return the rest.

        The backend runs them under our reference: finding them saves sending one twice (a second Midjourney
        job for the same click). One the backend cannot find is sent again, and only the resent one is shown.
        """
        if not cut:
            return []
        waiting = {job.ref: job for job in cut}
        running = await self._store.jobs.in_states((RUNNING,), backend=self._backend.facts.name)
        known = [job.backend_job_id for job in running if job.backend_job_id]
        try:
            found = await self._backend.find(list(waiting), known)
        except BackendError as exc:
            # Nothing to look them up by: rather than guess, send them again and say what that may cost.
            log.warning("%s could not list its jobs (%s): the %d job(s) a crash cut short are sent again; if it had "
                        "accepted one before the crash, that one runs twice", self._backend.facts.label_start,
                        exc.kind.value, len(cut))
            return list(cut)
        for ref, truth in found.items():
            job = waiting.get(ref)
            if job is None or not self._updates.made_by_us(job, truth):
                continue
            if await self._store.jobs.mark_running(job.id, truth.job_id, truth.raw) is not None:
                log.info("job %d: adopted %s, which the backend accepted before the restart", job.id, truth.job_id)
                del waiting[ref]
        return list(waiting.values())

    async def _submit(self, job: JobRecord) -> None:
        try:
            async with self._locks(job.id):
                await self._submit_locked(job)
        except Exception:
            log.exception("job %d: submission crashed; it is queued again", job.id)
            await self._store.jobs.requeue(job.id, time.time() + CRASH_RETRY_SECONDS)
        finally:
            self._wake.set()

    async def _submit_locked(self, job: JobRecord) -> None:
        problem = self.reference_problem(job)
        if problem is not None:
            await self._updates.fail(job, problem, ErrorKind.BAD_REQUEST)
            return
        if job.error == TIMED_OUT and not await self.adopt_cut_short([job]):
            # The call that timed out had been accepted: the backend runs it under our reference. Sending it
            # again would start a second Midjourney job for the same click.
            adopted = await self._store.jobs.get(job.id)
            if adopted is not None:
                await self._display.show(adopted)
            return
        backend = self._backend
        try:
            result = await self._send(job)
        except BackendError as exc:
            await self._refused(job, exc)
            return
        if result is None:
            return
        # The account works again: a later refusal of the token is a new problem worth telling admins about.
        await self._account.alerts.over(ErrorKind.UNAUTHORISED, ErrorKind.NO_SUBSCRIPTION)
        running = await self._store.jobs.mark_running(job.id, result.job_id, result.raw)
        if running is None:
            return
        log.info("job %d: accepted by %s as %s", job.id, backend.facts.label, result.job_id)
        if result.is_final:
            await self._updates.apply(running, result)
        elif result.status is BackendStatus.QUEUED and result.queue_position is not None:
            await self._display.show(running, messages.backend_queue_note(backend.facts, result.queue_position))
        else:
            await self._display.show(running)

    async def _send(self, job: JobRecord) -> JobUpdate | None:
        """The job's call (or calls) to the backend; None when the job could not be sent and was ended."""
        backend = self._backend
        callback_url = self._updates.urls.for_job(job)
        # Sent as max jobs too: after an untrackable job the backend advises a lower figure for a while.
        max_jobs = self.capacity()
        # The server's speed (mj-proxy: which of the proxy's bases takes the job; useapi's is account-wide).
        speed = (await self._store.teams.guild_settings(job.guild_id)).speed
        if job.parent_id is None:
            images = self._images.prompts(await self._store.images.of_job(job.id))
            if job.action == DESCRIBE:
                if not images:
                    await self._updates.fail(job, IMAGE_LOST, ErrorKind.NOT_FOUND)
                    return None
                return await backend.describe(images[0], ref=job.ref, callback_url=callback_url, speed=speed)
            if job.action == BLEND:
                return await backend.blend(images, dimensions=job.dimensions or "square", ref=job.ref,
                                           callback_url=callback_url, max_jobs=max_jobs, speed=speed)
            return await backend.imagine(job.prompt, ref=job.ref, callback_url=callback_url, max_jobs=max_jobs,
                                         images=images, speed=speed)
        parent = await self._store.jobs.get(job.parent_id)
        if parent is None or parent.backend_job_id is None or job.button is None:
            await self._updates.fail(job, "The job this button belongs to is not known any more.",
                                     ErrorKind.NOT_FOUND)
            return None
        if job.button in backend.facts.region and not await self._store.images.of_job(job.id):
            # Pressed without its region it would redraw the wrong part, or nothing: spend nothing on it.
            await self._updates.fail(job, REGION_LOST, ErrorKind.BAD_REQUEST)
            return None
        if job.backend_job_id is not None:
            # The press's first step was made before a crash or a refusal: only the prompt is still to give.
            return await self._give_prompt(job, parent, job.backend_job_id)
        result = await backend.press(parent.backend_job_id, Button(job.button, job.button_ref or job.button),
                                     ref=job.ref, callback_url=callback_url, max_jobs=max_jobs,
                                     prompt=job.button_prompt, speed=speed)
        if result.status is not BackendStatus.AWAITING_PROMPT:
            return result
        if await self._store.jobs.mark_awaiting_prompt(job.id, result.job_id) is None:
            return None
        return await self._give_prompt(job, parent, result.job_id)

    async def _give_prompt(self, job: JobRecord, parent: JobRecord, awaiting: str) -> JobUpdate:
        # A prompt the member gave, else the parent's: a job that asks for one unasked (the account's own Remix
        # is on) is completed as it would run without Remix, rather than left holding a slot.
        prompt = job.button_prompt or parent.prompt
        # A region's press carries the mask the member marked in the editor, kept with the job.
        kept = await self._store.images.of_job(job.id) if job.button in self._backend.facts.region else []
        mask = kept[0].data if kept else None
        log.info("job %d: %s waits for its prompt as %s; giving it%s", job.id, self._backend.facts.label, awaiting,
                 " with its region" if mask is not None else "")
        return await self._backend.give_prompt(awaiting, prompt, mask=mask)

    async def _refused(self, job: JobRecord, exc: BackendError) -> None:
        """The answer ladder: what each kind of refusal does to the job."""
        facts = self._backend.facts
        jobs = self._store.jobs
        kind = exc.kind
        if kind is ErrorKind.BUSY:
            # The backend's own retry_after (Discord's, inside useapi's answer) wins when it asks for longer.
            wait = max(self._retries.busy_seconds, exc.retry_after or 0.0)
            log.info("job %d: %s busy (%s), retrying in %.1fs", job.id, facts.label,
                     "rate limit" if exc.rate_limited else "slots full", wait)
            # Full slots are not a failure to reach the backend: they must not use up the tries for outages.
            requeued = await jobs.requeue(job.id, time.time() + wait, error="busy", reset_attempts=True)
            if requeued:
                await self._display.show(requeued, messages.busy_note(exc, facts, wait))
        elif kind in OUTAGE_KINDS:
            await self._retry_later(job, exc)
        elif kind is ErrorKind.ALREADY_DONE:
            await self._already_done(job, exc)
        elif kind is ErrorKind.NEEDS_HUMAN:
            requeued = await jobs.requeue(job.id, time.time(), error="paused", reset_attempts=True)
            await self._account.pause(exc, job.guild_id)
            if requeued:
                await self._display.notify(requeued, messages.explain(exc, facts).private)
                await self._display.show(requeued, messages.PAUSED_NOTE)
        elif kind is ErrorKind.UNTRACKABLE:
            await self._store.state.reduce_concurrency(time.time() + REDUCED_CONCURRENCY_SECONDS)
            await self._shared.written()
            log.warning("job %d: %s cannot follow the job Midjourney queued; using %d slots for %.0fs", job.id,
                        facts.label, self.capacity(), REDUCED_CONCURRENCY_SECONDS)
            await self._updates.fail(job, messages.explain(exc, facts), kind, backend_job_id=exc.job_id)
        elif kind is ErrorKind.MODERATED:
            await self._updates.fail(job, messages.explain(exc, facts), kind, status=MODERATED)
        elif kind in (ErrorKind.UNAUTHORISED, ErrorKind.NO_SUBSCRIPTION):
            # Operator trouble: no retry (every try would fail the same way); admins hear once.
            await self._updates.fail(job, messages.explain(exc, facts), kind)
            await self._account.alerts.once(kind, job.guild_id, messages.admin_alert(exc, facts))
        else:
            await self._updates.fail(job, messages.explain(exc, facts), kind)

    async def _retry_later(self, job: JobRecord, exc: BackendError) -> None:
        facts = self._backend.facts
        if job.attempts >= self._retries.attempts:
            log.warning("job %d: %s unreachable after %d tries: %s", job.id, facts.label, job.attempts, exc)
            await self._updates.fail(job, messages.explain(exc, facts, attempts=job.attempts), exc.kind)
            return
        delay = backoff(self._retries.base, self._retries.cap, job.attempts)
        log.info("job %d: %s unavailable (%s), try %d again in %.1fs", job.id, facts.label, exc.kind.value,
                 job.attempts, delay)
        # A timed-out call may have reached the backend all the same: the next try looks for it first.
        error = TIMED_OUT if exc.kind is ErrorKind.TIMEOUT else "unreachable"
        requeued = await self._store.jobs.requeue(job.id, time.time() + delay, error=error)
        if requeued:
            await self._display.show(requeued, messages.retry_note(facts, job.attempts, delay))

    async def _already_done(self, job: JobRecord, exc: BackendError) -> None:
        """The backend says the one-shot button was already used: point at the result that holds it, or adopt it."""
        facts = self._backend.facts
        jobs = self._store.jobs
        existing = await jobs.by_backend_id(facts.name, exc.job_id) if exc.job_id else None
        truth = None
        if existing is None and exc.job_id:
            try:
                truth = await self._backend.get(exc.job_id)
            except BackendError as lookup:
                await self._updates.fail(job, messages.explain(lookup, facts), lookup.kind)
                return
            # Two clicks racing: the other one's job may not be recorded under its id yet, but the backend
            # carries our reference, which names it.
            parsed = parse_ref(truth.ref or "", self._store.identity)
            if parsed is not None and parsed[0] != job.id:
                mine = await jobs.get(parsed[0])
                if (mine is not None and mine.ref == truth.ref and mine.parent_id == job.parent_id
                        and mine.button == job.button):
                    existing = mine
        if existing is not None and existing.id != job.id:
            link = (messages.jump_url(existing.guild_id, existing.channel_id, existing.message_id)
                    if existing.message_id is not None else None)
            text = messages.duplicate(job.button, job.parent_id, link)
            finished = await jobs.finish(job.id, DUPLICATE, expect=(SUBMITTING,), duplicate_of=existing.id,
                                         error=text, error_kind=ErrorKind.ALREADY_DONE)
            if finished:
                log.info("job %d: %s already made by job %d", job.id, job.button, existing.id)
                await self._display.notify(finished, text)
                await self._display.publish(finished)
            return
        if exc.job_id and truth is not None:
            # Made before a restart (or by hand): the job that button made becomes this one.
            running = await jobs.mark_running(job.id, exc.job_id, truth.raw)
            if running is not None:
                await self._updates.apply(running, truth)
            return
        await self._updates.fail(job, messages.explain(exc, facts), ErrorKind.ALREADY_DONE)
