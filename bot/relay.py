"""Job lifecycle: submit, schedule within Midjourney's slots, follow updates, publish each result once.

Knows nothing of discord.py: it speaks to Discord through the `Publisher` protocol, to useapi through
`UseapiClient`, and remembers everything in the `Store`, so that a restart picks up where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bot import images, messages
from bot.edits import EditCoalescer
from bot.images import ImageError, ImageFile
from bot.settings import Settings
from bot.store import (
    CANCELLED,
    COMPLETED,
    DUPLICATE,
    FAILED,
    MODERATED,
    QUEUED,
    RUNNING,
    SUBMITTING,
    JobRecord,
    Store,
)
from bot.useapi import errors
from bot.useapi.client import UseapiClient
from bot.useapi.models import Job

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 8
BACKOFF_BASE = 2.0
BACKOFF_CAP = 60.0
# After a 504 useapi advises fewer parallel jobs "for the next several minutes".
REDUCED_CONCURRENCY_SECONDS = 300.0
# Failures after which a later completion is still shown: Midjourney may finish the job anyway.
LATE_COMPLETION_CODES = frozenset({504, messages.TIMEOUT_CODE})
USEAPI_FINAL = {"completed": COMPLETED, "failed": FAILED, "moderated": MODERATED, "cancelled": CANCELLED}


@dataclass(frozen=True, slots=True)
class Shown:
    """Where a job's final state ended up in Discord."""

    message_id: int | None
    image_url: str | None = None
    extra_message_ids: tuple[int, ...] = ()


class PublishError(Exception):
    """Discord would not take the message now; the relay tries again later."""


class Publisher(Protocol):
    """What the relay needs from the Discord side."""

    async def show_pending(self, job: JobRecord, note: str | None) -> int | None:
        """Create or edit the job's working message; return its id (None if the channel is gone)."""

    async def show_final(self, job: JobRecord, image: ImageFile | None, note: str | None) -> Shown:
        """Create or edit the job's message into its result or failure card."""

    async def notify(self, job: JobRecord, text: str) -> None:
        """Tell the person who started the job, privately, while Discord still lets us."""

    async def alert_admins(self, guild_id: int | None, text: str) -> None:
        """Tell the server's admins about an account-wide problem."""


class Relay:
    """Owns every job from the click to the published result."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        useapi: UseapiClient,
        publisher: Publisher,
        http: aiohttp.ClientSession,
        callback_base: str | None,
        secret: str,
        simulated: bool = False,
        edit_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.useapi = useapi
        self.publisher = publisher
        self.http = http
        self.simulated = simulated
        # `<PUBLIC_URL>/callbacks/useapi/<secret>`, or None when callbacks are off and polling does it all.
        self._callback_base = callback_base
        self._secret = secret
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._last_served: dict[int, float] = {}
        self._reduced_until = 0.0
        self.paused_reason: str | None = None
        self.edits = EditCoalescer(edit_interval)
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up every unfinished job and start the scheduler and the poller."""
        self._last_served = await self.store.last_served()
        for job in await self.store.jobs_in((SUBMITTING,)):
            # The process died with a call in flight; useapi may or may not have the job. Send it again:
            # a U button answers 409 with the existing job, which is adopted; replyRef lets callbacks match.
            await self.store.requeue(job.id, time.time())
        for job in await self.store.jobs_in((QUEUED,)):
            if job.message_id is None:
                await self._show_pending(job)
        self._loops = [
            asyncio.create_task(self._scheduler_loop(), name="relay-scheduler"),
            asyncio.create_task(self._poll_loop(), name="relay-poller"),
        ]

    async def stop(self) -> None:
        """Stop the loops and let in-flight store writes finish."""
        self._closing = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        # In-flight submissions and publishes get a moment to record what they did; whatever is cut
        # short is resumed from the store at the next start.
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.edits.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- submission ----------------------------------------------------------------------------------

    async def submit_imagine(self, *, owner_id: int, guild_id: int, channel_id: int, prompt: str) -> JobRecord:
        """File a new /imagine job and show its working message; the scheduler sends it when a slot is free."""
        job = await self.store.create_job(guild_id=guild_id, channel_id=channel_id, owner_id=owner_id,
                                          prompt=prompt, simulated=self.simulated)
        return await self._file(job)

    async def submit_button(self, *, owner_id: int, guild_id: int, channel_id: int, parent: JobRecord,
                            button: str, prompt: str | None) -> JobRecord:
        """File a click of `button` on `parent`, with the prompt a modal gave, if any."""
        job = await self.store.create_job(guild_id=guild_id, channel_id=channel_id, owner_id=owner_id,
                                          prompt=prompt or parent.prompt, parent_id=parent.id, button=button,
                                          button_prompt=prompt, simulated=self.simulated)
        return await self._file(job)

    async def _file(self, job: JobRecord) -> JobRecord:
        log.info("job %d filed: owner=%d guild=%d kind=%s button=%s", job.id, job.owner_id, job.guild_id,
                 job.kind, job.button)
        async with self._locks[job.id]:
            job = await self._show_pending(job)
        self._wake.set()
        return job

    async def _show_pending(self, job: JobRecord, note: str | None = None) -> JobRecord:
        try:
            message_id = await self.publisher.show_pending(job, note)
        except PublishError:
            log.warning("job %d: working message could not be posted yet", job.id)
            return job
        if message_id is not None and message_id != job.message_id:
            updated = await self.store.set_message(job.id, message_id)
            return updated or job
        return job

    def capacity(self) -> int:
        """Midjourney slots the relay may use now: USEAPI_MAX_JOBS, halved for a while after a 504."""
        slots = self.settings.USEAPI_MAX_JOBS
        if time.time() < self._reduced_until:
            slots = max(1, slots // 2)
        return slots

    async def _scheduler_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                await self._dispatch_ready()
            except Exception:
                log.exception("scheduler pass failed")
            timeout = 30.0
            soonest = await self.store.earliest_not_before()
            if soonest is not None:
                timeout = min(timeout, max(0.05, soonest - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _dispatch_ready(self) -> None:
        if self.paused_reason is not None:
            return
        while True:
            free = self.capacity() - await self.store.count_active()
            if free <= 0:
                return
            candidates = await self.store.next_queued(time.time())
            if not candidates:
                return
            # Round-robin: the owner served longest ago goes first, so one person's twenty clicks
            # do not starve a colleague's one.
            pick = min(candidates, key=lambda j: (self._last_served.get(j.owner_id, 0.0), j.id))
            job = await self.store.mark_submitting(pick.id)
            if job is None:
                continue
            self._last_served[job.owner_id] = time.time()
            self._spawn(self._submit(job), f"submit-{job.id}")

    def reply_url(self, job_id: int) -> str | None:
        if self._callback_base is None:
            return None
        return f"{self._callback_base}/{job_id}"

    async def _submit(self, job: JobRecord) -> None:
        try:
            async with self._locks[job.id]:
                await self._submit_locked(job)
        except Exception:
            log.exception("job %d: submission crashed; it is queued again", job.id)
            await self.store.requeue(job.id, time.time() + BACKOFF_CAP)
        finally:
            self._wake.set()

    async def _submit_locked(self, job: JobRecord) -> None:
        common: dict[str, Any] = {
            "max_jobs": self.settings.USEAPI_MAX_JOBS,
            "reply_url": self.reply_url(job.id),
            "reply_ref": str(job.id),
        }
        try:
            if job.parent_id is None:
                result = await self.useapi.imagine(job.prompt, **common)
            else:
                parent = await self.store.get_job(job.parent_id)
                if parent is None or parent.useapi_jobid is None:
                    await self._fail(job, "The job this button belongs to is not known any more.", 404)
                    return
                assert job.button is not None
                result = await self.useapi.button(parent.useapi_jobid, job.button, prompt=job.button_prompt,
                                                  **common)
        except errors.TooManyRequests as exc:
            wait = max(self.settings.USEAPI_RETRY_SECONDS, exc.retry_after or 0.0)
            log.info("job %d: useapi busy (429), retrying in %.0fs", job.id, wait)
            requeued = await self.store.requeue(job.id, time.time() + wait, error="busy")
            if requeued:
                await self._show_pending(requeued, "Midjourney is busy: waiting to be sent again.")
            return
        except (errors.UseapiConnectionError, errors.ServerError) as exc:
            await self._retry_later(job, exc)
            return
        except errors.ButtonConflict as exc:
            await self._adopt_conflict(job, exc)
            return
        except errors.PendingModMessage as exc:
            await self.store.requeue(job.id, time.time(), error="paused", reset_attempts=True)
            await self._pause(exc, job.guild_id)
            return
        except errors.JobQueued as exc:
            self._reduced_until = time.time() + REDUCED_CONCURRENCY_SECONDS
            await self._fail(job, messages.explain(exc), 504, useapi_jobid=exc.jobid)
            return
        except errors.Unprocessable as exc:
            await self._fail(job, messages.explain(exc), 422, status=MODERATED)
            return
        except (errors.Unauthorized, errors.PaymentRequired) as exc:
            await self._fail(job, messages.explain(exc), exc.status)
            await self.publisher.alert_admins(job.guild_id, f"useapi answered {exc.status}: {exc.error}")
            return
        except errors.UseapiError as exc:
            await self._fail(job, messages.explain(exc), exc.status)
            return
        running = await self.store.mark_running(job.id, result.jobid, self.mask(result.model_dump()))
        if running is None:
            return
        log.info("job %d: accepted by useapi as %s", job.id, result.jobid)
        if result.is_final:
            await self._apply_truth(running, result)
        else:
            await self._show_pending(running)

    async def _retry_later(self, job: JobRecord, exc: errors.UseapiError) -> None:
        if job.attempts >= MAX_SUBMIT_ATTEMPTS:
            log.warning("job %d: useapi unreachable after %d tries: %s", job.id, job.attempts, exc)
            await self._fail(job, messages.explain(exc), messages.UNREACHABLE_CODE)
            return
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (job.attempts - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        log.info("job %d: useapi unavailable (%s), try %d again in %.1fs", job.id, type(exc).__name__,
                 job.attempts, delay)
        requeued = await self.store.requeue(job.id, time.time() + delay, error="unreachable")
        if requeued:
            await self._show_pending(requeued, "Waiting for useapi to answer again.")

    async def _adopt_conflict(self, job: JobRecord, exc: errors.ButtonConflict) -> None:
        existing = await self.store.get_by_useapi_jobid(exc.jobid) if exc.jobid else None
        if existing is not None and existing.id != job.id:
            finished = await self.store.finish(job.id, DUPLICATE, expect=(SUBMITTING,), duplicate_of=existing.id,
                                               error=f"{job.button} was already used", error_code=409)
            if finished:
                await self._publish_locked(finished)
            return
        if exc.jobid:
            # Made before a restart (or by hand): the job that button made becomes this one.
            try:
                truth = await self.useapi.get_job(exc.jobid)
            except errors.UseapiError as lookup:
                await self._fail(job, messages.explain(lookup), lookup.status)
                return
            running = await self.store.mark_running(job.id, exc.jobid, self.mask(truth.model_dump()))
            if running is not None:
                await self._apply_truth(running, truth)
            return
        await self._fail(job, messages.explain(exc), 409)

    async def _fail(self, job: JobRecord, why: messages.Explained | str, code: int, *,
                    status: str = FAILED, useapi_jobid: str | None = None) -> None:
        explained = why if isinstance(why, messages.Explained) else messages.Explained(why, why)
        finished = await self.store.finish(job.id, status, expect=(SUBMITTING, QUEUED, RUNNING),
                                           error=explained.public, error_code=code, useapi_jobid=useapi_jobid)
        if finished is None:
            return
        log.info("job %d: %s (%d)", job.id, status, code)
        await self.publisher.notify(finished, explained.private)
        await self._publish_locked(finished)

    async def _pause(self, exc: errors.UseapiError, guild_id: int) -> None:
        if self.paused_reason is None:
            self.paused_reason = messages.explain(exc).public
            log.warning("useapi reports a pending moderation message: submissions paused")
            await self.publisher.alert_admins(guild_id, self.paused_reason)

    def resume_submissions(self) -> None:
        """Lift a pause (after /relay reset, or once the account shows clear again)."""
        self.paused_reason = None
        self._wake.set()

    # -- updates from useapi -------------------------------------------------------------------------

    async def handle_callback(self, ref: str, body: dict[str, Any]) -> int:
        """Take one callback body for local job `ref`; return the HTTP status to answer with."""
        jobid = body.get("jobid")
        if not isinstance(jobid, str) or not ref.isdigit():
            return 400
        job = await self.store.get_job(int(ref))
        if job is None or job.useapi_jobid not in (None, jobid):
            return 404
        status = body.get("status")
        async with self._locks[job.id]:
            fresh = await self.store.get_job(job.id)
            assert fresh is not None
            if fresh.useapi_jobid is None:
                # Only a job whose submission died half-way has no jobid here; the truth decides.
                self._spawn(self._verify(fresh, jobid), f"verify-{fresh.id}")
                return 202
            if status in USEAPI_FINAL or fresh.is_final:
                # The body is a hint: the result shown is the one useapi gives us when we ask.
                self._spawn(self._verify(fresh, jobid), f"verify-{fresh.id}")
                return 202
            progress = Job.model_validate(body).progress if isinstance(body.get("content"), str) else None
            updated = await self.store.record_progress(fresh.id, progress, self.mask(body))
        if updated is not None:
            self._schedule_progress_edit(updated)
        return 200

    async def _verify(self, job: JobRecord, jobid: str) -> None:
        try:
            truth = await self.useapi.get_job(jobid)
        except errors.UseapiError as exc:
            log.info("job %d: could not re-read %s after a callback (%s); polling will", job.id, jobid,
                     type(exc).__name__)
            return
        async with self._locks[job.id]:
            fresh = await self.store.get_job(job.id)
            if fresh is None:
                return
            if fresh.useapi_jobid is None:
                if truth.replyRef != str(job.id) or fresh.status not in (QUEUED, SUBMITTING):
                    return
                adopted = await self.store.mark_running(job.id, jobid, self.mask(truth.model_dump()))
                if adopted is None:
                    return
                fresh = adopted
            await self._apply_truth(fresh, truth)

    async def _apply_truth(self, job: JobRecord, truth: Job) -> None:
        """Apply what GET jobs/?jobid= said (caller holds the job's lock)."""
        final = USEAPI_FINAL.get(truth.status or "")
        if final is None:
            updated = await self.store.record_progress(job.id, truth.progress, self.mask(truth.model_dump()))
            if updated is not None:
                self._schedule_progress_edit(updated)
            else:
                await self.store.touch(job.id)
            return
        expect: tuple[str, ...] = (RUNNING, SUBMITTING)
        if final == COMPLETED and job.status == FAILED and job.error_code in LATE_COMPLETION_CODES:
            expect = (FAILED,)
        if job.is_final and job.status not in expect:
            await self.store.touch(job.id)
            return
        error = None
        if final != COMPLETED:
            error = truth.errorDetails or truth.error or f"Midjourney reported the job {truth.status}."
        finished = await self.store.finish(
            job.id, final, expect=expect, buttons=truth.buttons if final == COMPLETED else None,
            job_json=self.mask(truth.model_dump()), error=error, error_code=truth.code if error else None,
        )
        if finished is None:
            return
        log.info("job %d: %s", job.id, final)
        if final == MODERATED and error:
            await self.publisher.notify(finished, f"Midjourney declined this job: {error}")
        await self._publish_locked(finished)
        self._wake.set()

    # -- polling, time-outs and retries --------------------------------------------------------------

    async def _poll_loop(self) -> None:
        interval = self.settings.POLL_INTERVAL
        first = True
        while not self._closing:
            try:
                await self.poll_once(everything=first)
                first = False
            except Exception:
                log.exception("poll pass failed")
            await asyncio.sleep(interval)

    async def poll_once(self, *, everything: bool = False) -> None:
        """Re-read jobs useapi has not told us about lately, time out stuck ones, retry unposted results."""
        now = time.time()
        interval = self.settings.POLL_INTERVAL
        # With callbacks on, polling only takes over for a job whose callbacks stopped coming.
        quiet = interval if self._callback_base is None else 3 * interval
        timeout = self.settings.JOB_TIMEOUT_MINUTES * 60
        late_failed = [j for j in await self.store.jobs_in((FAILED,))
                       if j.error_code in LATE_COMPLETION_CODES and j.useapi_jobid
                       and (j.finished_at or 0) > now - 3600]
        for job in await self.store.jobs_in((RUNNING,)) + late_failed:
            if job.status == RUNNING and job.submitted_at is not None and now - job.submitted_at > timeout:
                async with self._locks[job.id]:
                    await self._time_out(job)
                continue
            if not everything and job.last_event_at is not None and now - job.last_event_at < quiet:
                continue
            await self._poll_job(job)
        for job in await self.store.unpublished_final():
            async with self._locks[job.id]:
                fresh = await self.store.get_job(job.id)
                if fresh is not None:
                    await self._publish_locked(fresh)

    async def _poll_job(self, job: JobRecord) -> None:
        assert job.useapi_jobid is not None
        try:
            truth = await self.useapi.get_job(job.useapi_jobid)
        except errors.JobNotFound as exc:
            if job.status == RUNNING:
                async with self._locks[job.id]:
                    await self._fail(job, messages.explain(exc), 404)
            return
        except errors.PendingModMessage as exc:
            await self._pause(exc, job.guild_id)
            return
        except errors.UseapiError as exc:
            log.info("job %d: poll failed (%s); will try again", job.id, type(exc).__name__)
            return
        async with self._locks[job.id]:
            fresh = await self.store.get_job(job.id)
            if fresh is not None:
                await self._apply_truth(fresh, truth)

    async def _time_out(self, job: JobRecord) -> None:
        minutes = self.settings.JOB_TIMEOUT_MINUTES
        text = (f"No result from Midjourney after {minutes:.0f} minutes; the job is marked failed "
                "(a result that still arrives will be posted).")
        await self._fail(job, text, messages.TIMEOUT_CODE)

    # -- publishing ----------------------------------------------------------------------------------

    async def publish(self, job_id: int) -> None:
        async with self._locks[job_id]:
            job = await self.store.get_job(job_id)
            if job is not None:
                await self._publish_locked(job)

    async def _publish_locked(self, job: JobRecord) -> None:
        """Show a final job once; the caller holds its lock. A Discord failure leaves it for the next poll."""
        if job.published or not job.is_final:
            return
        self.edits.cancel(job.id)
        image: ImageFile | None = None
        note: str | None = None
        if job.status == COMPLETED and job.job_json:
            url = Job.model_validate(job.job_json).image_url
            if url:
                try:
                    data = await images.download(self.http, url)
                    image = ImageFile(data, images.filename_for(url, job.id))
                except ImageError as exc:
                    log.warning("job %d: %s", job.id, exc)
                    note = f"The image could not be fetched ({exc}); it is linked instead."
        try:
            shown = await self.publisher.show_final(job, image, note)
        except PublishError as exc:
            log.warning("job %d: result not posted yet (%s); will retry", job.id, exc)
            return
        await self.store.mark_published(job.id, job.status, shown.message_id, shown.image_url,
                                        shown.extra_message_ids)
        log.info("job %d: published as message %s", job.id, shown.message_id)

    def _schedule_progress_edit(self, job: JobRecord) -> None:
        async def edit() -> None:
            async with self._locks[job.id]:
                fresh = await self.store.get_job(job.id)
                # A progress edit that lost the race with the result must not paint over it.
                if fresh is not None and not fresh.is_final:
                    await self._show_pending(fresh)

        self.edits.schedule(job.channel_id, job.id, edit)

    # -- helpers -------------------------------------------------------------------------------------

    def mask(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of a job body with the callback secret taken out of replyUrl, fit to store or log."""
        masked = dict(data)
        url = masked.get("replyUrl")
        if isinstance(url, str) and self._secret and self._secret in url:
            masked["replyUrl"] = url.replace(self._secret, "***")
        return masked
