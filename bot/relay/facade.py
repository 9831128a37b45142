"""The relay as the cogs and the webhook see it: one object that owns every job from the click to the result.

It composes the parts, each owning the state of its concern (display, the account pause, submission and the
fair share, updates and verification, polling and the outage backoff, the leases on jobs), and knows nothing
of discord.py nor of any backend's wire format: Discord is behind the `Publisher` port, the backend behind
`Backend`. Several relays (processes) may share one database: the store's coordination divides the slots and
the jobs between them (bot.store.base.Coordinator), and the state they share is read from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from bot import buttons, messages
from bot.backends.base import Backend, BackendError, BackendFacts, Button, JobUpdate
from bot.jobs import ALL_STATES, CANCELLED, QUEUED, RUNNING, SUBMITTING, ErrorKind, JobRecord, SharedState
from bot.media import MediaPreparer
from bot.metrics import Metrics
from bot.relay.account import AccountGuard, Alerts, PauseState
from bot.relay.display import Display
from bot.relay.edits import EditCoalescer
from bot.relay.fairshare import FairShare
from bot.relay.images import ImageLinks, forget_old
from bot.relay.intake import Intake
from bot.relay.leases import Leases
from bot.relay.outage import Outage
from bot.relay.polling import Poller
from bot.relay.ports import Publisher
from bot.relay.region import Admission, RegionEditor
from bot.relay.shared import Shared
from bot.relay.submission import Retries, Submission
from bot.relay.tasks import JobLocks, Tasks, Wake
from bot.relay.updates import CallbackUrls, Updates
from bot.store import Store
from bot.uploads import Upload

log = logging.getLogger(__name__)

# How long stop() lets a scheduler or poll pass, and in-flight submissions, finish before cutting them short.
STOP_GRACE_SECONDS = 5.0
HOUSEKEEPING_SECONDS = 3600.0


async def _admit_all(guild_id: int, member_id: int) -> str | None:
    return None


class RelaySettings:
    """The knobs the relay reads, whatever the backend: taken from `Settings` by the caller."""

    def __init__(self, *, max_jobs: int, poll_interval: float, job_timeout_minutes: float, retry_seconds: float,
                 retry_attempts: int, backoff_seconds: float, backoff_max_seconds: float,
                 progress_edit_seconds: float, account: str | None = None, public_url: str | None = None,
                 kept_image_days: int = 7, call_timeout: float = 30.0) -> None:
        self.max_jobs = max_jobs
        self.poll_interval = poll_interval
        self.job_timeout_minutes = job_timeout_minutes
        self.retries = Retries(retry_seconds, retry_attempts, backoff_seconds, backoff_max_seconds)
        self.progress_edit_seconds = progress_edit_seconds
        self.account = account
        self.public_url = public_url  # where the listener is reachable (kept images, the region editor)
        self.kept_image_days = kept_image_days
        self.call_timeout = call_timeout  # the longest one backend call may take (BACKEND_TIMEOUT_SECONDS)


class Relay:
    """Owns every job from the click to the published result."""

    def __init__(self, *, settings: RelaySettings, store: Store, backend: Backend, publisher: Publisher,
                 media: MediaPreparer, callback_base: str | None, metrics: Metrics | None = None,
                 edit_interval: float | None = None, admit: Admission | None = None) -> None:
        self.store = store
        self.backend = backend
        self.metrics = metrics or Metrics()
        self.coordination = store.coordination
        self._wake = Wake(self.coordination.wake_others)
        self._tasks = tasks = Tasks()
        self._locks = locks = JobLocks()
        self.shared = shared = Shared(store, self._wake)
        shared.observe(self._shared_changed)
        self.fairshare = FairShare(store)
        self._pause = PauseState(store, shared)
        interval = settings.progress_edit_seconds if edit_interval is None else edit_interval
        self.display = Display(store=store, publisher=publisher, facts=backend.facts, fairshare=self.fairshare,
                               media=media, locks=locks, tasks=tasks, metrics=self.metrics,
                               paused=lambda: self._pause.current is not None, edit_interval=interval)
        self.account = AccountGuard(backend, store, self.display, self._pause, Alerts(store, self.display),
                                    account=settings.account, wake=self._wake)
        retries = settings.retries
        outage = Outage(backend.facts.label, retries.base, retries.cap, store, shared)
        self.updates = Updates(store=store, backend=backend, display=self.display, locks=locks, tasks=tasks,
                               outage=outage, urls=CallbackUrls(callback_base), wake=self._wake,
                               metrics=self.metrics)
        self.images = ImageLinks(settings.public_url)
        self._kept_days = settings.kept_image_days
        self.intake = Intake(store=store, facts=backend.facts, simulated=backend.simulated, display=self.display,
                             locks=locks, wake=self._wake, links=self.images,
                             images_by_link=backend.facts.images_by_link, kept_days=settings.kept_image_days,
                             lease=self._until)
        self.region = RegionEditor(store=store, intake=self.intake, media=media, public_url=settings.public_url,
                                   buttons=backend.facts.region, admit=admit or _admit_all)
        self.poller = Poller(store=store, backend=backend, updates=self.updates, account=self.account,
                             display=self.display, locks=locks, shared=shared, wake=self._wake,
                             interval=settings.poll_interval, timeout_minutes=settings.job_timeout_minutes,
                             callbacks=callback_base is not None)
        self.submission = Submission(store=store, backend=backend, display=self.display, updates=self.updates,
                                     account=self.account, shared=shared, locks=locks, tasks=tasks, wake=self._wake,
                                     max_jobs=settings.max_jobs, retries=retries, lease=self._until,
                                     images=self.images)
        self.leases = Leases(store=store, submission=self.submission, updates=self.updates, display=self.display,
                             poller=self.poller, locks=locks, tasks=tasks, wake=self._wake,
                             backend_name=backend.facts.name, interval=settings.poll_interval,
                             call_timeout=settings.call_timeout)
        self._loops: list[asyncio.Task[None]] = []
        self._housekeeper: asyncio.Task[None] | None = None

    # -- what the rest of the bot reads --------------------------------------------------------------

    @property
    def facts(self) -> BackendFacts:
        return self.backend.facts

    @property
    def simulated(self) -> bool:
        return self.backend.simulated

    @property
    def edits(self) -> EditCoalescer:
        return self.display.edits

    @property
    def paused_reason(self) -> str | None:
        return self.account.paused_reason

    @property
    def max_jobs(self) -> int:
        return self.submission.max_jobs

    def capacity(self) -> int:
        return self.submission.capacity()

    def reference_problem(self) -> str | None:
        return self.submission.reference_problem()

    async def used_buttons(self, job: JobRecord) -> frozenset[str]:
        return await self.display.used_buttons(job)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up every unfinished job no live process holds, and start the scheduler, the poller and the leases.

        Queued jobs keep their place, since the queue is the store's order; jobs whose submission a crash cut
        short are looked for at the backend before they are sent again (bot.relay.leases).
        """
        await self.coordination.start(on_wake=self._wake.set_here, on_job=self._job_changed)
        await self.shared.refresh()
        await self.leases.pick_up(await self.leases.take_over(), read_now=False)
        self._loops = [
            asyncio.create_task(self.submission.run(), name="relay-scheduler"),
            asyncio.create_task(self.poller.run(), name="relay-poller"),
            asyncio.create_task(self.leases.run(), name="relay-leases"),
        ]
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="relay-housekeeping")

    async def _housekeeping(self) -> None:
        """Forget kept images, editor links and interactions once they can serve nothing, every hour."""
        while True:
            try:
                images, links = await forget_old(self.store, self._kept_days)
                if images or links:
                    log.info("forgot %d kept images and %d editor links no longer needed", images, links)
                await self.store.notices.forget_expired(time.time())
            except Exception:
                log.exception("housekeeping failed; trying again in an hour")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def stop(self) -> None:
        """Stop the loops and let in-flight store writes finish; whatever is cut short resumes at the next start,
        or in another process: this one's leases end now, so another takes its jobs at once."""
        if self._housekeeper is not None:
            # It only deletes what is no longer needed: cut short, it does the rest next time.
            self._housekeeper.cancel()
        self.submission.stop()
        self.poller.stop()
        self.leases.stop()
        if self._loops:
            # A pass half-way gets a moment to finish what it is writing; one stuck on a slow backend is cut short.
            _, unfinished = await asyncio.wait(self._loops, timeout=STOP_GRACE_SECONDS)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
        await self._tasks.drain(STOP_GRACE_SECONDS)
        await self.display.close()
        if self._loops:
            try:
                await self.coordination.let_go()
            except Exception as exc:  # the database is gone: the leases run out by themselves
                log.info("leases not ended at stop (%s); they run out by themselves", type(exc).__name__)

    def _until(self) -> float:
        return self.leases.until()

    def _shared_changed(self, before: SharedState, after: SharedState) -> None:
        """Each process shows what every process reads, on the cards of the jobs it holds."""
        if before.pause is None and after.pause is not None:
            # Every waiting job's working message says why it waits.
            self._tasks.spawn(self.display.note_all((QUEUED,), None), "pause-note")
        if (before.outage.since is None) != (after.outage.since is None):
            note = messages.outage_note(self.facts) if after.outage.since is not None else None
            self._tasks.spawn(self.display.note_all((QUEUED, RUNNING), note), "outage-note")

    def _job_changed(self, job_id: int) -> None:
        """Another process changed a job this one holds (a callback it took, a cancel): show it here."""
        self._tasks.spawn(self._show_changed(job_id), f"changed-{job_id}")

    async def _show_changed(self, job_id: int) -> None:
        async with self._locks(job_id):
            fresh = await self.store.jobs.get(job_id)
            if fresh is None or not self.display.mine(fresh):
                return
            if fresh.is_final:
                await self.display.publish(fresh)
            elif fresh.message_id is not None:
                self.display.schedule(fresh)

    # -- intake --------------------------------------------------------------------------------------

    async def submit_imagine(self, *, owner_id: int, guild_id: int, channel_id: int, prompt: str,
                             images: Sequence[Upload] = ()) -> JobRecord:
        """File a new /imagine job and show its working message; the scheduler sends it when a slot is free."""
        return await self.intake.imagine(owner_id=owner_id, guild_id=guild_id, channel_id=channel_id, prompt=prompt,
                                         images=images)

    async def submit_button(self, *, owner_id: int, guild_id: int, channel_id: int, parent: JobRecord,
                            button: Button, prompt: str | None, mask: bytes | None = None) -> JobRecord:
        """File a click of `button` on `parent`, with the prompt a modal gave (and a region's mask), if any.

        A one-shot button with a job already waiting, running or made on `parent` raises `OneShotTaken`.
        """
        return await self.intake.button(owner_id=owner_id, guild_id=guild_id, channel_id=channel_id, parent=parent,
                                        button=button, prompt=prompt, mask=mask)

    async def submit_describe(self, *, owner_id: int, guild_id: int, channel_id: int, image: Upload) -> JobRecord:
        return await self.intake.describe(owner_id=owner_id, guild_id=guild_id, channel_id=channel_id, image=image)

    async def submit_blend(self, *, owner_id: int, guild_id: int, channel_id: int, images: Sequence[Upload],
                           dimensions: str) -> JobRecord:
        return await self.intake.blend(owner_id=owner_id, guild_id=guild_id, channel_id=channel_id, images=images,
                                       dimensions=dimensions)

    async def submit_from_description(self, *, owner_id: int, channel_id: int, parent: JobRecord,
                                      button: Button) -> JobRecord:
        """A button under a description: 1️⃣..4️⃣ start an /imagine with that prompt, 🔄 describes the image again;
        either is the clicker's job (raises `ImagesGone` when the image to describe is no longer kept)."""
        index = buttons.describe_pick(button)
        if index is None:
            return await self.intake.describe_again(owner_id=owner_id, channel_id=channel_id, parent=parent)
        return await self.intake.imagine(owner_id=owner_id, guild_id=parent.guild_id, channel_id=channel_id,
                                         prompt=parent.prompts[index])

    def images_refused(self) -> str | None:
        """Why images cannot be given with this backend here, or None."""
        return self.intake.images_refused()

    async def seed(self, job: JobRecord) -> str:
        """A finished grid's seed: kept once known, else asked of the backend (raises `BackendError`)."""
        if job.seed is not None:
            return job.seed
        assert job.backend_job_id is not None
        seed = await self.backend.seed(job.backend_job_id)
        await self.store.jobs.set_seed(job.id, seed)
        return seed

    async def set_speed(self, guild_id: int, speed: str) -> str:
        """Make `speed` the one this server's jobs run at (useapi: the whole account's); what the backend said
        (raises `BackendError`, UNSUPPORTED where it does not offer that speed)."""
        said = await self.backend.set_speed(speed)
        await self.store.teams.update_guild_settings(guild_id, speed=speed)
        log.info("speed of server %d set to %s", guild_id, speed)
        return said

    async def handle_callback(self, ref: str, body: dict[str, object]) -> int:
        return await self.updates.handle_callback(ref, body)

    async def poll_once(self, *, everything: bool = False) -> None:
        await self.poller.poll_once(everything=everything)

    # -- the backend, for commands -------------------------------------------------------------------

    async def lookup(self, job_id: str) -> JobUpdate:
        """A backend job by its id, as it is now (raises `BackendError`)."""
        return await self.backend.get(job_id)

    async def import_job(self, *, guild_id: int, channel_id: int, owner_id: int, truth: JobUpdate) -> JobRecord:
        """Record a finished backend job made elsewhere as the owner's, so its buttons can be used here."""
        return await self.store.jobs.import_completed(
            guild_id=guild_id, channel_id=channel_id, owner_id=owner_id, backend=self.facts.name,
            backend_job_id=truth.job_id, prompt=truth.prompt or "", buttons=truth.buttons, media=truth.media,
            done_buttons=truth.done_buttons, job_json=truth.raw, created_at=truth.created_at,
            simulated=self.simulated)

    async def cancel(self, job_id: int) -> str:
        """Cancel an unfinished job for its owner: a queued one here (nothing sent, no quota spent), a running one
        at the backend. What happened, in words for the card's reader."""
        async with self._locks(job_id):
            job = await self.store.jobs.get(job_id)
            if job is None or job.is_final:
                return "That job is already finished."
            if job.status == QUEUED:
                text = "Cancelled by its owner before it was sent; nothing reached Midjourney."
            elif job.backend_job_id is None:
                return "That job is being sent to Midjourney right now; cancel it again in a moment."
            else:
                try:
                    await self.backend.cancel(job.backend_job_id)
                except BackendError as exc:
                    log.info("job %d: cancel refused (%s)", job.id, exc.kind.value)
                    return messages.explain(exc, self.facts).private
                text = "Cancelled by its owner."
            finished = await self.store.jobs.finish(job.id, CANCELLED, expect=(job.status,), error=text,
                                                    error_kind=ErrorKind.CANCELLED)
            if finished is None:
                return "That job changed meanwhile; see its card."
            log.info("job %d: cancelled by its owner (%s)", job.id, job.status)
            self._wake.set()
            await self.display.publish(finished)
            return text

    async def remove(self, job: JobRecord, *, forget_prompt: bool = False) -> tuple[int, int] | None:
        """Delete a finished job's messages and forget its result's links (and, for a purge, its prompt);
        (messages deleted, links forgotten), or None when the job is not finished."""
        async with self._locks(job.id):
            fresh = await self.store.jobs.get(job.id)
            if fresh is None or not fresh.is_final:
                return None
            gallery = (await self.store.teams.guild_settings(fresh.guild_id)).gallery_channel_id
            deleted = await self.display.publisher.delete_messages(fresh, gallery)
            links = len(fresh.media) + (1 if fresh.image_url else 0)
            await self.store.jobs.erase(fresh.id, forget_prompt=forget_prompt)
            await self.store.images.forget(fresh.id)  # the images its member gave go with it
            log.info("job %d: removed (%d messages, %d links)", fresh.id, deleted, links)
            return deleted, links

    async def pause(self, error: BackendError, guild_id: int | None) -> None:
        await self.account.pause(error, guild_id)

    async def reset_account(self) -> list[str]:
        return await self.account.reset()

    async def check_account(self) -> bool:
        return await self.account.check()

    async def refresh_gauges(self) -> None:
        """Bring the job, queue and slot gauges up to date (at scrape time: one grouped count)."""
        counts = await self.store.jobs.count_by_status()
        self.metrics.set_jobs(counts, ALL_STATES)
        self.metrics.queue_length.set(counts.get(QUEUED, 0))
        self.metrics.slots_in_use.set(counts.get(SUBMITTING, 0) + counts.get(RUNNING, 0))
        self.metrics.slots_capacity.set(0 if self.paused_reason is not None else self.capacity())

