"""What the channel sees of each job: its working message (place in line, progress, notes) and, once, its result.

Discord limits message edits per channel, so every non-final edit goes through one budget per channel
(latest state first); the first post of a working message and every final result are immediate.

Where several processes share the database, a job's messages are edited and published only by the process
that holds the job (bot.store.claims), under its job lock, so that a progress edit never paints over the
result another process posted; any other process that learns something of the job pokes the holder instead.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from bot import buttons
from bot.backends.base import BackendFacts
from bot.jobs import COMPLETED, FRUITLESS_STATES, QUEUED, JobBrief, JobRecord
from bot.media import MediaPreparer, Prepared
from bot.messages import PAUSED_NOTE
from bot.metrics import Metrics
from bot.relay.edits import EditCoalescer
from bot.relay.fairshare import FairShare
from bot.relay.ports import FinalCard, MessageGone, Publisher, PublishError, Shown
from bot.relay.tasks import JobLocks, Tasks
from bot.store import Store

log = logging.getLogger(__name__)

# A result Discord refuses for good (403) is tried this many times in all, then marked undelivered.
MAX_REFUSED_PUBLISHES = 5
# How long a claim to post a result holds against the other processes: far longer than a post takes (a large
# upload included), so that only a process stalled mid-post loses it; one that died loses it at once.
PUBLISH_CLAIM_SECONDS = 300.0


class Display:
    """Working messages and results, each job's shown once it is final."""

    def __init__(self, *, store: Store, publisher: Publisher, facts: BackendFacts, fairshare: FairShare,
                 media: MediaPreparer, locks: JobLocks, tasks: Tasks, metrics: Metrics, paused: Callable[[], bool],
                 edit_interval: float) -> None:
        self._store = store
        self._coordination = store.coordination
        self._tasks = tasks
        self.publisher = publisher
        self._facts = facts
        self._fairshare = fairshare
        self._media = media
        self._locks = locks
        self._metrics = metrics
        self._paused = paused
        self.edits = EditCoalescer(edit_interval, self._coordination.edit_turn)
        # The progress figure and preview last scheduled for display per job: a repeat costs no edit.
        self._progress_shown: dict[int, tuple[int, str | None]] = {}
        # The place in line each waiting message shows now, so only the messages whose place changed are edited.
        self._shown_places: dict[int, int] = {}

    async def close(self) -> None:
        await self.edits.close()

    def mine(self, job: JobRecord | JobBrief) -> bool:
        """Whether this process shows the job (it holds it, or nobody does yet: it is being filed here)."""
        return job.claimed_by is None or job.claimed_by == self._coordination.me

    def _poke_holder(self, job: JobRecord | JobBrief) -> None:
        assert job.claimed_by is not None
        self._tasks.spawn(self._coordination.poke(job.claimed_by, job.id), f"poke-{job.id}")

    # -- working messages ----------------------------------------------------------------------------

    async def show(self, job: JobRecord, note: str | None = None) -> JobRecord:
        """Show a job that is not final: its first post at once (the clicker's answer links to it), later
        changes through the channel's edit budget."""
        if job.message_id is not None:
            self.schedule(job, note)
            return job
        return await self._post(job, note)

    async def _post(self, job: JobRecord, note: str | None = None) -> JobRecord:
        if note is None and job.status == QUEUED and self._paused():
            note = PAUSED_NOTE
        place = await self._fairshare.place(job.id) if job.status == QUEUED else None
        try:
            message_id = await self.publisher.show_pending(job, note, place)
        except PublishError:
            self._metrics.discord_failures.inc()
            log.warning("job %d: working message could not be posted yet", job.id)
            return job
        if place is None:
            self._shown_places.pop(job.id, None)
        else:
            self._shown_places[job.id] = place
        if message_id is not None and message_id != job.message_id:
            return await self._store.jobs.set_message(job.id, message_id) or job
        return job

    def schedule(self, job: JobRecord | JobBrief, note: str | None = None) -> None:
        """Edit a working message within its channel's budget, to the job's state when the edit runs (another
        process's job: its holder is told to, and the note, a passing one, is left out)."""
        if not self.mine(job):
            self._poke_holder(job)
            return

        async def edit() -> None:
            async with self._locks(job.id):
                fresh = await self._store.jobs.get(job.id)
                # A progress edit that lost the race with the result must not paint over it; a job another
                # process took over meanwhile is that one's to show.
                if fresh is not None and not fresh.is_final and self.mine(fresh):
                    # A note describes the state it was written for ("waiting…"), not a later one.
                    await self._post(fresh, note if fresh.status == job.status else None)

        self.edits.schedule(job.channel_id, job.id, edit)

    def progress(self, job: JobRecord | JobBrief, figure: int, preview: str | None = None) -> None:
        """Show a new progress figure (and preview); the same again (a poll that found nothing new) costs no edit."""
        if self._progress_shown.get(job.id) != (figure, preview):
            self._progress_shown[job.id] = (figure, preview)
            self.schedule(job)

    async def refresh_places(self) -> None:
        """Re-show the place of every waiting job whose place moved (jobs sent, a newcomer served sooner).

        The edits share the per-channel budget with progress and are coalesced: a burst of moves is one edit
        per message, of its latest place.
        """
        order = await self._fairshare.order()
        waiting = {job.id for job in order}
        for job_id in [key for key in self._shown_places if key not in waiting]:
            del self._shown_places[job_id]
        for place, job in enumerate(order, start=1):
            # A job waiting to be sent again (busy, unreachable) shows that note until it is; an edit for its
            # place would take the note away. Each process edits the cards of the jobs it holds.
            if (job.message_id is not None and job.error is None and self.mine(job)
                    and self._shown_places.get(job.id) != place):
                self.schedule(job)

    async def note_all(self, states: tuple[str, ...], note: str | None) -> None:
        """Put `note` on every card this process shows of a job in `states` (None: take it away again)."""
        for job in await self._store.jobs.in_states(states, claimed_by=self._coordination.me):
            if job.message_id is not None:
                self.schedule(job, note)

    # -- results -------------------------------------------------------------------------------------

    async def used_buttons(self, job: JobRecord) -> frozenset[str]:
        """The one-shot buttons of `job` already used: by a job of ours that did not come to nothing, or at
        the backend (a job pasted from elsewhere)."""
        used = {child.button for child in await self._store.jobs.children_of(job.id)
                if child.button and child.status not in FRUITLESS_STATES}
        used.update(job.done_buttons)
        return frozenset(name for name in used if name in self._facts.one_shot)

    async def notify(self, job: JobRecord, text: str, admin_text: str | None = None) -> None:
        await self.publisher.notify(job, text, admin_text)

    async def publish(self, job: JobRecord) -> None:
        """Show a final job once; the caller holds its lock. A Discord failure leaves it for the next poll.

        Exactly once, whatever mix of callbacks, polls and restarts gets here: the result is an edit of the
        job's own message, so doing it again after a crash shows the same card. Where that message does not
        exist (never posted, or deleted by a moderator) a new one is posted and its id stored *before* the
        result goes into it: a crash in between leaves at most a stray working message, never two results.
        Across processes only the job's holder posts, and only under the claim to post it, which another process
        taking the job over meanwhile waits for.
        """
        if job.published or not job.is_final:
            return
        if not self.mine(job):
            self._poke_holder(job)
            return
        now = time.time()
        if not await self._coordination.claim_publish(job.id, now=now, until=now + PUBLISH_CLAIM_SECONDS):
            log.info("job %d: its result is being posted by another process", job.id)
            return
        try:
            await self._publish(job)
        finally:
            # Shown, or to be tried again (by this process's next poll, or another's after a takeover).
            await self._coordination.release_publish(job.id)

    async def _publish(self, job: JobRecord) -> None:
        self.edits.cancel(job.id)
        self._progress_shown.pop(job.id, None)
        if job.message_id is None:
            fresh = await self._new_card(job, None)
            if fresh is None:
                return
            job = fresh
        prepared = Prepared()
        used: frozenset[str] = frozenset()
        if job.status == COMPLETED:
            prepared = await self._media.prepare(job.id, job.result, await self.publisher.upload_limit(job.guild_id))
            used = await self.used_buttons(job)
        card = FinalCard(job, prepared.file, prepared.link, prepared.note, used)
        try:
            try:
                shown = await self.publisher.show_final(card)
            except MessageGone:
                log.info("job %d: message %s is gone; posting the result in a new one", job.id, job.message_id)
                fresh = await self._new_card(job, "The earlier message for this job was deleted.")
                if fresh is None:
                    return
                card = dataclasses.replace(card, job=fresh)
                shown = await self.publisher.show_final(card)
        except PublishError as exc:
            self._metrics.discord_failures.inc()
            if exc.refused:
                await self._refused(card.job, exc)
            else:
                log.warning("job %d: result not posted yet (%s); will retry", job.id, exc)
            return
        job = card.job
        # Both before the result is recorded as shown: a crash in between repeats them, harmlessly.
        if job.status == COMPLETED and job.parent_id is not None and job.button in self._facts.one_shot:
            await self._redraw_used(job.parent_id)
        if job.status == COMPLETED and buttons.is_upscale(job.button, self._facts.one_shot):
            await self._copy_to_gallery(card, shown)
        await self._store.jobs.mark_published(job.id, job.status, shown.message_id, shown.image_url,
                                              shown.extra_message_ids)
        self._metrics.published.inc()
        log.info("job %d: published as message %s", job.id, shown.message_id)

    async def _refused(self, job: JobRecord, exc: PublishError) -> None:
        """Discord refuses the result in its channel (the bot lost its permissions there): a few more tries, the
        owner told privately while Discord lets us, then the job marked undelivered and the admins told."""
        failures = await self._store.jobs.note_publish_refused(job.id)
        where = f"<#{job.channel_id}>"
        if failures == 1:
            await self.publisher.notify(job, f"It finished, but Discord refuses to show it in {where} ({exc}). "
                                             f"You can see it with `/job {job.id}`.")
        if failures < MAX_REFUSED_PUBLISHES:
            log.warning("job %d: Discord refused its result (%s), %d of %d tries", job.id, exc, failures,
                        MAX_REFUSED_PUBLISHES)
            return
        reason = f"Discord refused to show it in {where} ({exc})"
        # The admins first: a crash before the job is marked repeats the alert at worst, never loses it.
        admin_channel = (await self._store.teams.guild_settings(job.guild_id)).admin_channel_id
        await self.publisher.alert_admins(
            job.guild_id, admin_channel,
            f"Job #{job.id} of <@{job.owner_id}> could not be posted in {where}: {exc}. Check the bot's "
            "permissions there (View Channel, Send Messages, Attach Files, Embed Links); its owner can see it with "
            f"`/job {job.id}`.")
        await self._store.jobs.mark_published(job.id, job.status, job.message_id, None, undelivered=reason)
        log.warning("job %d: result undelivered after %d refusals: %s", job.id, failures, exc)

    async def _new_card(self, job: JobRecord, note: str | None) -> JobRecord | None:
        """Post a fresh message for a final job and record its id; None when there is nothing to post into yet."""
        try:
            message_id = await self.publisher.show_pending(job, note, None)
        except PublishError as exc:
            self._metrics.discord_failures.inc()
            if exc.refused:
                await self._refused(job, exc)
            else:
                log.warning("job %d: no message to show the result in yet (%s); will retry", job.id, exc)
            return None
        if message_id is None:
            # The channel itself is gone: nowhere to post. The result stays in the store for /job.
            log.warning("job %d: its channel %d is gone; the result is kept but not posted", job.id, job.channel_id)
            await self._store.jobs.mark_published(job.id, job.status, None, None)
            return None
        return await self._store.jobs.set_message(job.id, message_id) or job

    async def _redraw_used(self, parent_id: int) -> None:
        """Show a parent's one-shot button as used once its result exists, as Midjourney does."""
        parent = await self._store.jobs.get(parent_id)
        if parent is None or parent.status != COMPLETED or not parent.published or parent.message_id is None:
            return
        await self.publisher.redraw_buttons(parent, await self.used_buttons(parent))

    async def _copy_to_gallery(self, card: FinalCard, shown: Shown) -> None:
        """Copy a finished upscale to the server's gallery channel, once; the result never waits on it."""
        job = card.job
        if job.gallery_message_id is not None:
            return
        gallery = (await self._store.teams.guild_settings(job.guild_id)).gallery_channel_id
        if gallery is None or gallery == job.channel_id:
            return
        copied = await self.publisher.copy_to_gallery(card, gallery, shown)
        if copied is not None:
            await self._store.jobs.set_gallery_copy(job.id, copied)
            log.info("job %d: copied to the gallery as message %d", job.id, copied)
