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
from bot.backends.useapi import errors
from bot.backends.useapi.client import UseapiClient
from bot.backends.useapi.models import Job, parse_progress
from bot.edits import EditCoalescer
from bot.images import ImageError, ImageFile
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import (
    ALL_STATES,
    CANCELLED,
    COMPLETED,
    DUPLICATE,
    FAILED,
    MODERATED,
    QUEUED,
    RUNNING,
    SUBMITTING,
    JobBrief,
    JobRecord,
    Store,
)

log = logging.getLogger(__name__)

BACKOFF_CAP = 60.0
# After a 504 useapi advises fewer parallel jobs "for the next several minutes".
REDUCED_CONCURRENCY_SECONDS = 300.0
# Failures after which a later completion is still shown: Midjourney may finish the job anyway.
LATE_COMPLETION_CODES = frozenset({504, messages.TIMEOUT_CODE})
# The 596 pause, kept in the store's meta table ("" when not paused).
PAUSED_REASON_KEY = "paused_reason"
PAUSED_CHANNEL_KEY = "paused_channel"
# How long stop() lets a scheduler or poll pass finish before cutting it short.
STOP_GRACE_SECONDS = 5.0
# Callback fields are checked before anything is looked up: useapi's jobids are about 80 characters.
MAX_JOBID_LENGTH = 256
# On every waiting or running job's card while useapi does not answer polls or lookups.
OUTAGE_NOTE = ("Waiting for useapi, which is not answering right now: the job keeps its place and carries on "
               "by itself once useapi is back.")
TIMED_OUT = "timed out"  # the error a job is requeued with after its call timed out
USEAPI_FINAL = {"completed": COMPLETED, "failed": FAILED, "moderated": MODERATED, "cancelled": CANCELLED}


@dataclass(frozen=True, slots=True)
class Shown:
    """Where a job's final state ended up in Discord."""

    message_id: int | None
    image_url: str | None = None
    extra_message_ids: tuple[int, ...] = ()


class PublishError(Exception):
    """Discord would not take the message now; the relay tries again later."""


class MessageGone(PublishError):
    """The job's message no longer exists (a moderator deleted it); the relay posts a new one first."""


class Publisher(Protocol):
    """What the relay needs from the Discord side."""

    async def show_pending(self, job: JobRecord, note: str | None, position: int | None = None) -> int | None:
        """Create or edit the job's working message (a queued one with its place in line); return its id
        (None if the channel is gone)."""

    async def show_final(self, job: JobRecord, image: ImageFile | None, note: str | None) -> Shown:
        """Create or edit the job's message into its result or failure card."""

    async def notify(self, job: JobRecord, text: str, admin_text: str | None = None) -> None:
        """Tell the person who started the job, privately, while Discord still lets us (admins: admin_text)."""

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
        edit_interval: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        # The progress figure last scheduled for display per job: a repeated figure costs no edit.
        self._progress_shown: dict[int, int] = {}
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
        # The place in line each waiting message shows now, so only the messages whose place changed are edited.
        self._shown_places: dict[int, int] = {}
        self._reduced_until = 0.0
        self.paused_reason: str | None = None
        # The Midjourney channel useapi named in its 596 answer: the one /relay reset clears.
        self.paused_channel: str | None = None
        # Account-wide alerts already sent, by (kind, server): admins hear once per episode, not per job.
        self._alerted: set[tuple[str, int | None]] = set()
        self.edits = EditCoalescer(settings.PROGRESS_EDIT_SECONDS if edit_interval is None else edit_interval)
        self._closing = False
        self._stopping = asyncio.Event()
        # A useapi outage (no answer, timeout, 5xx) is one relay-wide backoff: every submission and poll
        # waits for the same `_retry_at`, so queued jobs keep their order instead of each retrying on its
        # own clock, and useapi is asked once per round rather than once per job.
        self._outage_since: float | None = None
        self._outage_round = 0
        self._retry_at = 0.0
        # One GET jobs/?jobid= in flight per job for callbacks; copies arriving meanwhile ask for one more.
        self._verifying: set[int] = set()
        self._verify_again: dict[int, str] = {}

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up every unfinished job and start the scheduler and the poller.

        Callbacks sent while the bot was down are lost (useapi does not retry them), so the poller's first
        pass re-reads every running job with GET jobs/?jobid= and publishes results that were final but not
        yet shown; queued jobs keep their place, since the queue is the store's order.
        """
        self._last_served = await self.store.last_served()
        # A pause outlives a restart: the first job sent would only meet useapi's 596 again.
        self.paused_reason = await self.store.get_meta(PAUSED_REASON_KEY) or None
        self.paused_channel = await self.store.get_meta(PAUSED_CHANNEL_KEY) or None
        for job in await self._adopt_cut_short(await self.store.jobs_in((SUBMITTING,))):
            # The process died with a call in flight and useapi is not running it: send it again. A U button
            # answers 409 with the existing job, which is adopted; replyRef lets a late callback match.
            await self.store.requeue(job.id, time.time())
        for job in await self.store.jobs_in((QUEUED,)):
            if job.message_id is None:
                await self._show_pending(job)
        self._loops = [
            asyncio.create_task(self._scheduler_loop(), name="relay-scheduler"),
            asyncio.create_task(self._poll_loop(), name="relay-poller"),
        ]

    async def _adopt_cut_short(self, jobs: list[JobRecord]) -> list[JobRecord]:
        """Adopt the jobs useapi accepted just before a crash cut their submission short; return the rest.

        useapi runs them under our replyRef: finding them among the jobs it is executing saves sending one
        twice (a second Midjourney job for the same click). One that already finished is not listed there;
        it is sent again, and only the resent one is shown.
        """
        if not jobs:
            return []
        waiting = {str(job.id): job for job in jobs}
        try:
            executing = await self.useapi.executing()
        except errors.UseapiError as exc:
            log.info("could not list useapi's running jobs (%s); sending %d cut-short jobs again",
                     type(exc).__name__, len(jobs))
            return jobs
        for jobid in executing:
            if not waiting:
                break
            if await self.store.get_by_useapi_jobid(jobid) is not None:
                continue
            try:
                truth = await self.useapi.get_job(jobid)
            except errors.UseapiError:
                continue
            job = waiting.get(truth.replyRef or "")
            if job is None or not self._made_by_us(job, truth):
                continue
            if await self.store.mark_running(job.id, jobid, self.mask(truth.model_dump())) is not None:
                log.info("job %d: adopted %s, which useapi accepted before the restart", job.id, jobid)
                del waiting[str(job.id)]
        return list(waiting.values())

    async def stop(self) -> None:
        """Stop the loops and let in-flight store writes finish."""
        self._closing = True
        self._stopping.set()
        self._wake.set()
        # A scheduler or poll pass that is half-way gets a moment to finish what it is writing; a pass
        # stuck on a slow useapi is cut short and its jobs are picked up again at the next start.
        if self._loops:
            _, unfinished = await asyncio.wait(self._loops, timeout=STOP_GRACE_SECONDS)
            for task in unfinished:
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
        if job.message_id is not None:
            # Discord limits edits per channel, so every non-final edit (progress, queue place, a waiting
            # note) goes through one budget per channel, latest state first. Only the first post is
            # immediate: the clicker's answer links to it.
            self._schedule_progress_edit(job, note)
            return job
        return await self._post_pending(job, note)

    async def _post_pending(self, job: JobRecord, note: str | None = None) -> JobRecord:
        if note is None and self.paused_reason is not None and job.status == QUEUED:
            note = messages.PAUSED_NOTE
        place = await self._place(job) if job.status == QUEUED else None
        try:
            message_id = await self.publisher.show_pending(job, note, place)
        except PublishError:
            self.metrics.discord_failures.inc()
            log.warning("job %d: working message could not be posted yet", job.id)
            return job
        if place is None:
            self._shown_places.pop(job.id, None)
        else:
            self._shown_places[job.id] = place
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
                await self._refresh_places()
            except Exception:
                log.exception("scheduler pass failed")
            timeout = 30.0
            # With every slot taken, only a freed slot (or a new job) can change anything, and both set
            # the wake event: waiting on a job's not_before then would spin over a backlog.
            if self.paused_reason is None and not await self._slots_full():
                soonest = await self.store.earliest_not_before()
                if soonest is not None:
                    timeout = min(timeout, max(0.05, soonest - time.time()))
            if self._reduced_until > time.time():
                # Full capacity comes back when the 504 window ends; nothing else would wake us for it.
                timeout = min(timeout, max(0.05, self._reduced_until - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _slots_full(self) -> bool:
        return await self.store.count_active() >= self.capacity()

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

    async def _place(self, job: JobRecord) -> int | None:
        """The job's 1-based place in line, in the order `_dispatch_ready` will send the queue."""
        order = await self.store.queue_order(self._last_served)
        return next((place for place, queued in enumerate(order, start=1) if queued.id == job.id), None)

    async def _refresh_places(self) -> None:
        """Re-show the place of every waiting job whose place moved (jobs sent, a newcomer served sooner).

        The edits share the per-channel budget with progress and are coalesced: a burst of moves is one
        edit per message, of its latest place.
        """
        order = await self.store.queue_order(self._last_served)
        waiting = {job.id for job in order}
        for job_id in [key for key in self._shown_places if key not in waiting]:
            del self._shown_places[job_id]
        for place, job in enumerate(order, start=1):
            # A job waiting to be sent again (useapi busy or unreachable) shows that note until it is;
            # an edit for its place would take the note away.
            if job.message_id is not None and job.error is None and self._shown_places.get(job.id) != place:
                self._schedule_progress_edit(job)

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

    def reply_problem(self, job_id: int = 10**18) -> str | None:
        """Why useapi would refuse this bot's replyUrl/replyRef (over 1024 characters), or None."""
        url = self.reply_url(job_id) or ""
        if len(url) > messages.REPLY_FIELD_LIMIT:
            return (f"The callback address (PUBLIC_URL plus the bot's path) is {len(url)} characters; useapi "
                    f"accepts at most {messages.REPLY_FIELD_LIMIT}. An admin must shorten PUBLIC_URL.")
        if len(str(job_id)) > messages.REPLY_FIELD_LIMIT:
            return f"The job reference is longer than useapi's {messages.REPLY_FIELD_LIMIT} characters."
        return None

    async def _submit_locked(self, job: JobRecord) -> None:
        # Sent as maxJobs too: after a 504 useapi advises a lower figure for a while.
        common: dict[str, Any] = {
            "max_jobs": self.capacity(),
            "reply_url": self.reply_url(job.id),
            "reply_ref": str(job.id),
        }
        problem = self.reply_problem(job.id)
        if problem is not None:
            await self._fail(job, problem, messages.LOCAL_REFUSAL_CODE)
            return
        if job.error == TIMED_OUT and not await self._adopt_cut_short([job]):
            # The call that timed out had been accepted: useapi runs it under our replyRef. Sending it
            # again would start a second Midjourney job for the same click.
            adopted = await self.store.get_job(job.id)
            if adopted is not None:
                await self._show_pending(adopted)
            return
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
            # Discord's own retry_after (inside errorDetails) wins when it asks for longer.
            wait = max(self.settings.USEAPI_RETRY_SECONDS, exc.retry_after or 0.0)
            log.info("job %d: useapi busy (429%s), retrying in %.1fs", job.id,
                     "" if exc.queue_full else ", Discord rate limit", wait)
            # A full queue is not a failure to reach useapi: it must not use up the tries for outages.
            requeued = await self.store.requeue(job.id, time.time() + wait, error="busy", reset_attempts=True)
            if requeued:
                await self._show_pending(requeued, messages.busy_note(exc, wait))
            return
        except (errors.UseapiConnectionError, errors.ServerError) as exc:
            await self._retry_later(job, exc)
            return
        except errors.ButtonConflict as exc:
            await self._adopt_conflict(job, exc)
            return
        except errors.PendingModMessage as exc:
            requeued = await self.store.requeue(job.id, time.time(), error="paused", reset_attempts=True)
            await self.pause(exc, job.guild_id)
            if requeued:
                await self.publisher.notify(requeued, messages.explain(exc).private)
                await self._show_pending(requeued, messages.PAUSED_NOTE)
            return
        except errors.JobQueued as exc:
            self._reduced_until = time.time() + REDUCED_CONCURRENCY_SECONDS
            log.warning("job %d: useapi answered 504 (job queued); using %d slots for %.0fs", job.id,
                        self.capacity(), REDUCED_CONCURRENCY_SECONDS)
            await self._fail(job, messages.explain(exc), 504, useapi_jobid=exc.jobid)
            return
        except errors.Unprocessable as exc:
            await self._fail(job, messages.explain(exc), 422, status=MODERATED)
            return
        except (errors.Unauthorized, errors.PaymentRequired) as exc:
            # Operator trouble: no retry (every try would fail the same way); admins hear once.
            await self._fail(job, messages.explain(exc), exc.status)
            await self._alert_once(str(exc.status), job.guild_id, messages.admin_alert(exc))
            return
        except errors.UseapiError as exc:
            await self._fail(job, messages.explain(exc), exc.status)
            return
        # The account works again: a later 401/402 is a new problem worth telling admins about.
        self._alerted -= {key for key in self._alerted if key[0] in {"401", "402"}}
        running = await self.store.mark_running(job.id, result.jobid, self.mask(result.model_dump()))
        if running is None:
            return
        log.info("job %d: accepted by useapi as %s", job.id, result.jobid)
        if result.is_final:
            await self._apply_truth(running, result)
        else:
            await self._show_pending(running)

    async def _retry_later(self, job: JobRecord, exc: errors.UseapiError) -> None:
        if job.attempts >= self.settings.USEAPI_RETRY_ATTEMPTS:
            log.warning("job %d: useapi unreachable after %d tries: %s", job.id, job.attempts, exc)
            await self._fail(job, messages.explain(exc, attempts=job.attempts), messages.UNREACHABLE_CODE)
            return
        # Capped exponential backoff with jitter, so many jobs hit by one outage do not return in step.
        delay = min(self.settings.USEAPI_BACKOFF_MAX_SECONDS,
                    self.settings.USEAPI_BACKOFF_SECONDS * 2 ** (job.attempts - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        log.info("job %d: useapi unavailable (%s), try %d again in %.1fs", job.id, type(exc).__name__,
                 job.attempts, delay)
        # A timed-out call may have reached useapi all the same: the next try looks for it first.
        error = TIMED_OUT if isinstance(exc, errors.UseapiTimeout) else "unreachable"
        requeued = await self.store.requeue(job.id, time.time() + delay, error=error)
        if requeued:
            await self._show_pending(requeued, messages.retry_note(job.attempts, delay))

    async def _adopt_conflict(self, job: JobRecord, exc: errors.ButtonConflict) -> None:
        """useapi says the U button was already used: point at the result that holds it, or adopt it."""
        existing = await self.store.get_by_useapi_jobid(exc.jobid) if exc.jobid else None
        truth: Job | None = None
        if existing is None and exc.jobid:
            try:
                truth = await self.useapi.get_job(exc.jobid)
            except errors.UseapiError as lookup:
                await self._fail(job, messages.explain(lookup), lookup.status)
                return
            # Two clicks racing: the other one's job may not be recorded under its jobid yet, but useapi
            # carries our replyRef, which names it.
            ref = truth.replyRef
            if ref and ref.isdigit() and int(ref) != job.id:
                mine = await self.store.get_job(int(ref))
                if mine is not None and mine.parent_id == job.parent_id and mine.button == job.button:
                    existing = mine
        if existing is not None and existing.id != job.id:
            link = (messages.jump_url(existing.guild_id, existing.channel_id, existing.message_id)
                    if existing.message_id is not None else None)
            text = messages.duplicate(job.button, job.parent_id, link)
            finished = await self.store.finish(job.id, DUPLICATE, expect=(SUBMITTING,), duplicate_of=existing.id,
                                               error=text, error_code=409)
            if finished:
                log.info("job %d: %s already made by job %d (409)", job.id, job.button, existing.id)
                await self.publisher.notify(finished, text)
                await self._publish_locked(finished)
            return
        if exc.jobid and truth is not None:
            # Made before a restart (or by hand): the job that button made becomes this one.
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
        await self.publisher.notify(finished, explained.private, explained.admin)
        await self._publish_locked(finished)

    async def _alert_once(self, kind: str, guild_id: int | None, text: str) -> None:
        """Alert a server's admins about an account-wide problem once per episode of it."""
        if (kind, guild_id) in self._alerted:
            return
        self._alerted.add((kind, guild_id))
        await self.publisher.alert_admins(guild_id, text)

    async def pause(self, exc: errors.UseapiError, guild_id: int | None) -> None:
        """Stop every submission at once (useapi answered 596): each further call would only fail."""
        if isinstance(exc, errors.PendingModMessage) and exc.channel:
            self.paused_channel = exc.channel
            await self.store.set_meta(PAUSED_CHANNEL_KEY, exc.channel)
        if self.paused_reason is None:
            self.paused_reason = messages.explain(exc).public
            await self.store.set_meta(PAUSED_REASON_KEY, self.paused_reason)
            log.warning("useapi reports a pending moderation message: submissions paused")
            # Every waiting job's working message says why it waits.
            for queued in await self.store.jobs_in((QUEUED,)):
                if queued.message_id is not None:
                    self._schedule_progress_edit(queued)
        await self._alert_once("596", guild_id, messages.admin_alert(exc))

    async def resume_submissions(self) -> None:
        """Lift a pause (after /relay reset, or once the account shows clear again)."""
        if self.paused_reason is not None:
            log.info("submissions resumed")
        self.paused_reason = None
        self.paused_channel = None
        await self.store.set_meta(PAUSED_REASON_KEY, "")
        await self.store.set_meta(PAUSED_CHANNEL_KEY, "")
        self._alerted -= {key for key in self._alerted if key[0] == "596"}
        self._wake.set()

    async def reset_account(self) -> list[str]:
        """An admin's /relay reset: POST account/midjourney/{channel}/reset, then resume; the channels reset.

        The channel is USEAPI_CHANNEL, else the one useapi named in its 596 answer, else every configured
        account that shows a pending moderation message. Raises the useapi error when a reset fails.
        """
        if self.settings.USEAPI_CHANNEL:
            channels = [self.settings.USEAPI_CHANNEL]
        elif self.paused_channel:
            channels = [self.paused_channel]
        else:
            accounts = await self.useapi.account()
            channels = [name for name, account in accounts.items() if account.pendingModMessage] or list(accounts)
        for channel in channels:
            await self.useapi.reset(channel)
            log.info("useapi account channel %s reset by an admin", channel)
        await self.resume_submissions()
        return channels

    async def check_account(self) -> bool:
        """While paused, resume once GET account/midjourney shows the account clear; True if resumed.

        The bot only looks: clearing the message is a human's job (and an admin's /relay reset).
        """
        if self.paused_reason is None:
            return False
        try:
            accounts = await self.useapi.account()
        except errors.UseapiError as exc:
            log.info("account check failed (%s); still paused", type(exc).__name__)
            return False
        watched = ([self.paused_channel] if self.paused_channel in accounts else
                   [self.settings.USEAPI_CHANNEL] if self.settings.USEAPI_CHANNEL in accounts else list(accounts))
        if not watched or any(accounts[name].pendingModMessage for name in watched):
            return False
        log.info("useapi shows the Midjourney account clear again")
        await self.resume_submissions()
        return True

    # -- updates from useapi -------------------------------------------------------------------------

    async def handle_callback(self, ref: str, body: dict[str, Any]) -> int:
        """Take one callback body for local job `ref`; return the HTTP status to answer with.

        The body is a hint, never the truth: anyone who learns the URL can post to it and useapi may repeat
        or reorder posts. A final status is believed only once GET jobs/?jobid= says so (a forged "completed"
        never reaches the channel); a repeat, or a `progress` after the job is final, changes nothing.
        """
        jobid = body.get("jobid")
        status = body.get("status")
        if not isinstance(jobid, str) or not jobid or len(jobid) > MAX_JOBID_LENGTH:
            return 400
        if status is not None and not isinstance(status, str):
            return 400
        # ASCII digits only (str.isdigit accepts other scripts' digits too), short enough for SQLite.
        if not (ref.isascii() and ref.isdigit()) or len(ref) > 18:
            return 404
        if status not in USEAPI_FINAL:
            # The common case in one guarded statement: a progress step of a job running under this jobid.
            # Only the figure is taken from the body; the update also tells the poller callbacks still come.
            content = body.get("content")
            progress = parse_progress(content) if isinstance(content, str) else None
            noted = await self.store.note_progress(int(ref), jobid, None if progress is None else min(progress, 100))
            if noted is not None:
                brief, stored = noted
                if self._progress_shown.get(brief.id) != stored:
                    self._progress_shown[brief.id] = stored
                    self._schedule_progress_edit(brief)
                return 200
        job = await self.store.get_job(int(ref))
        if job is None or job.useapi_jobid not in (None, jobid):
            return 404
        async with self._locks[job.id]:
            fresh = await self.store.get_job(job.id)
            if fresh is None or fresh.useapi_jobid not in (None, jobid):
                return 404
            if fresh.useapi_jobid is None:
                if fresh.status not in (QUEUED, SUBMITTING):
                    return 404  # it never reached useapi, so no job of ours has that jobid
                # Its submission died half-way (a restart): useapi may have it; GET decides, replyRef matches.
                self._request_verify(fresh.id, jobid)
                return 202
            if fresh.is_final:
                if status == "completed" and fresh.status == FAILED and fresh.error_code in LATE_COMPLETION_CODES:
                    # Marked failed (timed out, or 504) but Midjourney finished after all: still shown.
                    self._request_verify(fresh.id, jobid)
                    return 202
                self.metrics.callback("duplicate")
                return 200  # a repeat or a stale update of a finished job
            if status in USEAPI_FINAL:
                self._request_verify(fresh.id, jobid)
                return 202
            content = body.get("content")
            progress = Job(jobid=jobid, content=content).progress if isinstance(content, str) else None
            if progress is not None:
                progress = min(progress, 100)
            # Only the progress figure is taken from the body; the stored job JSON stays what useapi said
            # when asked. The update also tells the poller that callbacks are still coming.
            updated = await self.store.record_progress(fresh.id, progress, fresh.job_json or {})
        if updated is not None and updated.progress != fresh.progress:
            self._schedule_progress_edit(updated)
        return 200

    def _request_verify(self, job_id: int, jobid: str) -> None:
        """Re-read `jobid` for local job `job_id`, one GET at a time per job.

        A callback arriving while a GET is in flight asks for one more afterwards (its news may be newer
        than what that GET saw), so five copies of a callback cost two GETs, not five.
        """
        if job_id in self._verifying:
            self._verify_again[job_id] = jobid
            return
        self._verifying.add(job_id)
        self._spawn(self._verify_loop(job_id, jobid), f"verify-{job_id}")

    async def _verify_loop(self, job_id: int, jobid: str) -> None:
        try:
            pending: str | None = jobid
            while pending is not None:
                await self._verify(job_id, pending)
                pending = self._verify_again.pop(job_id, None)
        finally:
            self._verifying.discard(job_id)
            self._verify_again.pop(job_id, None)

    async def _verify(self, job_id: int, jobid: str) -> None:
        """Apply what useapi says of `jobid` when asked, after a callback named it for job `job_id`."""
        try:
            truth = await self.useapi.get_job(jobid)
        except errors.JobNotFound:
            log.info("job %d: a callback named a job useapi does not know; ignored", job_id)
            return
        except errors.UseapiError as exc:
            if isinstance(exc, errors.UseapiConnectionError | errors.ServerError):
                self._useapi_unreachable(exc)
            log.info("job %d: could not re-read it after a callback (%s); polling will", job_id,
                     type(exc).__name__)
            return
        self._useapi_answered()
        async with self._locks[job_id]:
            fresh = await self.store.get_job(job_id)
            if fresh is None or truth.jobid != jobid:
                return
            if fresh.useapi_jobid is None:
                if fresh.status not in (QUEUED, SUBMITTING) or not self._made_by_us(fresh, truth):
                    return
                adopted = await self.store.mark_running(job_id, jobid, self.mask(truth.model_dump()))
                if adopted is None:
                    return
                log.info("job %d: adopted %s, which useapi accepted before a restart", job_id, jobid)
                fresh = adopted
            elif fresh.useapi_jobid != jobid:
                return
            await self._apply_truth(fresh, truth)

    def _made_by_us(self, job: JobRecord, truth: Job) -> bool:
        """Whether useapi's `truth` is the submission of local `job` (its replyRef, and replyUrl if we sent one)."""
        if truth.replyRef != str(job.id):
            return False
        expected = self.reply_url(job.id)
        return expected is None or truth.replyUrl in (None, expected)

    async def _apply_truth(self, job: JobRecord, truth: Job) -> None:
        """Apply what GET jobs/?jobid= said (caller holds the job's lock)."""
        final = USEAPI_FINAL.get(truth.status or "")
        if final is None:
            updated = await self.store.record_progress(job.id, truth.progress, self.mask(truth.model_dump()))
            if updated is None:
                await self.store.touch(job.id)
            elif self._progress_shown.get(updated.id) != (updated.progress or 0):
                # A poll that found the same figure costs no edit of the channel's budget.
                self._progress_shown[updated.id] = updated.progress or 0
                self._schedule_progress_edit(updated)
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
        # Its Midjourney slot is free now: the next job need not wait for this one's upload to Discord.
        self._wake.set()
        if final == MODERATED and error:
            await self.publisher.notify(finished, f"Midjourney declined this job: {error}")
        await self._publish_locked(finished)

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
            # Waiting on the stop event, not sleeping, lets stop() end the loop between passes at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def poll_once(self, *, everything: bool = False) -> None:
        """Re-read jobs useapi has not told us about lately, time out stuck ones, retry unposted results."""
        now = time.time()
        interval = self.settings.POLL_INTERVAL
        # With callbacks on, polling only takes over for a job whose callbacks stopped coming.
        quiet = interval if self._callback_base is None else 3 * interval
        timeout = self.settings.JOB_TIMEOUT_MINUTES * 60
        # While paused only the account is asked about: every job call would answer 596.
        await self.check_account()
        # Filtered in SQL: a long history holds many failed jobs, and this runs every poll interval.
        late_failed = await self.store.late_failures(LATE_COMPLETION_CODES, since=now - 3600)
        for job in await self.store.jobs_in((RUNNING,)) + late_failed:
            if self._closing:
                return
            # A job adopted after a restart was never submitted by this process: count from its filing.
            since = job.submitted_at if job.submitted_at is not None else job.created_at
            if job.status == RUNNING and now - since > timeout:
                async with self._locks[job.id]:
                    fresh = await self.store.get_job(job.id)
                    if fresh is not None and fresh.status == RUNNING:
                        await self._time_out(fresh)
                continue
            if not everything and job.last_event_at is not None and now - job.last_event_at < quiet:
                continue
            if self.paused_reason is not None:
                continue
            if time.time() < self._retry_at:
                continue  # useapi is down: the rest of this pass waits for the backoff
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
            await self.pause(exc, job.guild_id)
            return
        except errors.UseapiError as exc:
            if isinstance(exc, errors.UseapiConnectionError | errors.ServerError):
                self._useapi_unreachable(exc)
            log.info("job %d: poll failed (%s); will try again", job.id, type(exc).__name__)
            return
        self._useapi_answered()
        async with self._locks[job.id]:
            fresh = await self.store.get_job(job.id)
            if fresh is not None and fresh.useapi_jobid == job.useapi_jobid:
                await self._apply_truth(fresh, truth)

    def _useapi_unreachable(self, exc: errors.UseapiError) -> None:
        """Note a failed call to useapi: polls hold off for a capped exponential backoff with jitter."""
        now = time.time()
        if self._outage_since is None:
            self._outage_since = now
            log.warning("useapi is not answering (%s); polls back off until it does", type(exc).__name__)
            self._spawn(self._show_outage(OUTAGE_NOTE), "outage-note")
        if now >= self._retry_at:
            # A new round: calls that were already in flight when the last round began do not count twice.
            self._outage_round += 1
            delay = min(self.settings.USEAPI_BACKOFF_MAX_SECONDS,
                        self.settings.USEAPI_BACKOFF_SECONDS * 2 ** min(self._outage_round - 1, 30))
            self._retry_at = now + delay / 2 + random.uniform(0, delay / 2)

    def _useapi_answered(self) -> None:
        if self._outage_since is not None:
            log.info("useapi answers again after %.1fs", time.time() - self._outage_since)
            self._spawn(self._show_outage(None), "outage-note")
        self._outage_since = None
        self._outage_round = 0
        self._retry_at = 0.0

    async def _show_outage(self, note: str | None) -> None:
        """Tell every waiting or running job's card that useapi is not answering (None: that it is again)."""
        for job in await self.store.jobs_in((QUEUED, RUNNING)):
            if job.message_id is not None:
                self._schedule_progress_edit(job, note)

    async def _time_out(self, job: JobRecord) -> None:
        """Fail a job that stayed running far longer than Midjourney takes, freeing its slot (lock held)."""
        minutes = self.settings.JOB_TIMEOUT_MINUTES
        took = f"{minutes:g} minutes" if minutes >= 1 else f"{minutes * 60:.3g} seconds"
        text = (f"No result from Midjourney after {took}; the job is marked failed "
                "(a result that still arrives will be posted).")
        log.warning("job %d: still running after %s; marked failed", job.id, took)
        await self._fail(job, text, messages.TIMEOUT_CODE)
        self._wake.set()

    # -- publishing ----------------------------------------------------------------------------------

    async def publish(self, job_id: int) -> None:
        async with self._locks[job_id]:
            job = await self.store.get_job(job_id)
            if job is not None:
                await self._publish_locked(job)

    async def _publish_locked(self, job: JobRecord) -> None:
        """Show a final job once; the caller holds its lock. A Discord failure leaves it for the next poll.

        Exactly once, whatever mix of callbacks, polls and restarts gets here: the result is an edit of the
        job's own message, so doing it again after a crash shows the same card. Where that message does not
        exist (never posted, or deleted by a moderator) a new one is posted and its id stored *before* the
        result goes into it: a crash in between leaves at most a stray working message, never two results.
        """
        if job.published or not job.is_final:
            return
        self.edits.cancel(job.id)
        self._progress_shown.pop(job.id, None)
        if job.message_id is None:
            card = await self._new_card(job, None)
            if card is None:
                return
            job = card
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
            try:
                shown = await self.publisher.show_final(job, image, note)
            except MessageGone:
                log.info("job %d: message %s is gone; posting the result in a new one", job.id, job.message_id)
                card = await self._new_card(job, "The earlier message for this job was deleted.")
                if card is None:
                    return
                job = card
                shown = await self.publisher.show_final(job, image, note)
        except PublishError as exc:
            self.metrics.discord_failures.inc()
            log.warning("job %d: result not posted yet (%s); will retry", job.id, exc)
            return
        await self.store.mark_published(job.id, job.status, shown.message_id, shown.image_url,
                                        shown.extra_message_ids)
        self.metrics.published.inc()
        log.info("job %d: published as message %s", job.id, shown.message_id)

    async def _new_card(self, job: JobRecord, note: str | None) -> JobRecord | None:
        """Post a fresh message for a final job and record its id; None when there is nothing to post into yet."""
        try:
            message_id = await self.publisher.show_pending(job, note)
        except PublishError as exc:
            self.metrics.discord_failures.inc()
            log.warning("job %d: no message to show the result in yet (%s); will retry", job.id, exc)
            return None
        if message_id is None:
            # The channel itself is gone: nowhere to post. The result stays in the store for /job.
            log.warning("job %d: its channel %d is gone; the result is kept but not posted", job.id, job.channel_id)
            await self.store.mark_published(job.id, job.status, None, None)
            return None
        return await self.store.set_message(job.id, message_id) or job

    def _schedule_progress_edit(self, job: JobRecord | JobBrief, note: str | None = None) -> None:
        async def edit() -> None:
            async with self._locks[job.id]:
                fresh = await self.store.get_job(job.id)
                # A progress edit that lost the race with the result must not paint over it.
                if fresh is not None and not fresh.is_final:
                    # A note describes the state it was written for ("waiting…"), not a later one.
                    await self._post_pending(fresh, note if fresh.status == job.status else None)

        self.edits.schedule(job.channel_id, job.id, edit)

    # -- helpers -------------------------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        """Bring the job, queue and slot gauges up to date (at scrape time: one grouped count)."""
        counts = await self.store.count_by_status()
        self.metrics.set_jobs(counts, ALL_STATES)
        self.metrics.queue_length.set(counts.get(QUEUED, 0))
        self.metrics.slots_in_use.set(counts.get(SUBMITTING, 0) + counts.get(RUNNING, 0))
        self.metrics.slots_capacity.set(0 if self.paused_reason is not None else self.capacity())

    def mask(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of a job body with the callback secret taken out of replyUrl, fit to store or log."""
        masked = dict(data)
        url = masked.get("replyUrl")
        if isinstance(url, str) and self._secret and self._secret in url:
            masked["replyUrl"] = url.replace(self._secret, "***")
        return masked
