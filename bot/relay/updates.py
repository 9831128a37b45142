"""Updates from the backend: callbacks (hints, verified before they are believed) and what a read job says.

A callback is never the truth: anyone who learns the URL can post to it, and backends repeat and reorder
posts. A final state is believed only once the backend, asked, says so (a forged "completed" never reaches
the channel); a repeat, or a progress step after the job is final, changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from bot import buttons, messages
from bot.backends.base import Backend, BackendError, BackendStatus, JobUpdate
from bot.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    LATE_COMPLETION_KINDS,
    MODERATED,
    QUEUED,
    RUNNING,
    SUBMITTING,
    ErrorKind,
    JobRecord,
)
from bot.metrics import Metrics
from bot.relay.display import Display
from bot.relay.intake import DESCRIBE
from bot.relay.outage import Outage
from bot.relay.tasks import JobLocks, Tasks
from bot.store import Store

log = logging.getLogger(__name__)

_FINAL = {
    BackendStatus.DONE: (COMPLETED, None),
    BackendStatus.FAILED: (FAILED, ErrorKind.JOB_FAILED),
    BackendStatus.MODERATED: (MODERATED, ErrorKind.MODERATED),
    BackendStatus.CANCELLED: (CANCELLED, ErrorKind.CANCELLED),
}
# A job's reference: `<database identity>-<job>`, or the bare job number of a job filed before identities.
_REF = re.compile(r"(?:(?P<db>[0-9a-f]{10})-)?(?P<id>[0-9]{1,18})")
NO_PROMPTS = "Midjourney finished describing the image but suggested no prompts for it."
OUTAGE_KINDS = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT})


def parse_ref(ref: str, identity: str) -> tuple[int, str | None] | None:
    """The job a reference names in this database, and the reference as the row stores it (None: the default
    one, with this database's identity); None when it cannot name a job of this database."""
    match = _REF.fullmatch(ref) if ref.isascii() else None
    if match is None:
        return None
    if match["db"] is None:
        return int(match["id"]), ref
    if match["db"] != identity:
        return None
    return int(match["id"]), None


class CallbackUrls:
    """Where the backend posts a job's updates: `<PUBLIC_URL>/callbacks/<backend>/<secret>/<job reference>`."""

    def __init__(self, base: str | None) -> None:
        self.base = base  # None: no PUBLIC_URL, so no callbacks; polling does it all

    def for_job(self, job: JobRecord) -> str | None:
        return self.for_ref(job.ref)

    def for_ref(self, ref: str) -> str | None:
        return None if self.base is None else f"{self.base}/{ref}"


class Updates:
    """Applies what the backend says of a job, and takes callbacks."""

    def __init__(self, *, store: Store, backend: Backend, display: Display, locks: JobLocks, tasks: Tasks,
                 outage: Outage, urls: CallbackUrls, wake: asyncio.Event, metrics: Metrics) -> None:
        self._store = store
        self._backend = backend
        self._display = display
        self._locks = locks
        self._tasks = tasks
        self.outage = outage
        self.urls = urls
        self._wake = wake
        self._metrics = metrics
        # One read in flight per job for callbacks; copies arriving meanwhile ask for one more.
        self._verifying: set[int] = set()
        self._verify_again: dict[int, str] = {}

    def made_by_us(self, job: JobRecord, truth: JobUpdate) -> bool:
        """Whether the backend's `truth` is the submission of `job` (its reference, and callback URL if we sent one)."""
        if truth.ref != job.ref:
            return False
        expected = self.urls.for_job(job)
        return expected is None or truth.callback_url in (None, expected)

    async def backend_answered(self) -> None:
        await self.outage.answered()

    async def backend_failed(self, error: BackendError) -> None:
        if error.kind in OUTAGE_KINDS:
            await self.outage.failed(error.kind.value)

    async def apply(self, job: JobRecord, truth: JobUpdate) -> None:
        """Apply what the backend said of `job` when asked (the caller holds the job's lock)."""
        final = _FINAL.get(truth.status)
        jobs = self._store.jobs
        if final is None:
            updated = await jobs.record_progress(job.id, truth.progress, truth.preview_url, truth.raw)
            if updated is None:
                await jobs.touch(job.id)
            else:
                self._display.progress(updated, updated.progress or 0, updated.preview_url)
            return
        status, kind = final
        expect: tuple[str, ...] = (RUNNING, SUBMITTING)
        if status == COMPLETED and job.status == FAILED and job.error_kind in LATE_COMPLETION_KINDS:
            expect = (FAILED,)  # marked failed (timed out, or untrackable) but Midjourney finished after all
        if job.is_final and job.status not in expect:
            await jobs.touch(job.id)
            return
        error = None if status == COMPLETED else truth.error or f"Midjourney reported the job {truth.status.value}."
        made = truth.buttons
        prompts: tuple[str, ...] | None = None
        if status == COMPLETED and job.kind == DESCRIBE:
            # A description's buttons are the relay's own: each prompt to /imagine, and 🔄 to describe again.
            prompts = truth.prompts[:len(buttons.DESCRIBE_PICKS)]
            made = buttons.describe_buttons(prompts)
            if not prompts:
                status, kind, error = FAILED, ErrorKind.JOB_FAILED, NO_PROMPTS
        finished = await jobs.finish(
            job.id, status, expect=expect, buttons=made if status == COMPLETED else None,
            media=truth.media if status == COMPLETED else None, done_buttons=truth.done_buttons,
            job_json=truth.raw, error=error, error_kind=kind, prompts=prompts,
        )
        if finished is None:
            return
        log.info("job %d: %s", job.id, status)
        # Its Midjourney slot is free now: the next job need not wait for this one's upload to Discord.
        self._wake.set()
        if status == MODERATED and error:
            await self._display.notify(finished, f"Midjourney declined this job: {error}")
        await self._display.publish(finished)

    async def fail(self, job: JobRecord, why: messages.Explained | str, kind: ErrorKind, *, status: str = FAILED,
                   backend_job_id: str | None = None) -> None:
        """End a job that will not run (or ran too long), tell its owner, and show it."""
        explained = why if isinstance(why, messages.Explained) else messages.Explained(why, why)
        finished = await self._store.jobs.finish(job.id, status, expect=(SUBMITTING, QUEUED, RUNNING),
                                                 error=explained.public, error_kind=kind,
                                                 backend_job_id=backend_job_id)
        if finished is None:
            return
        log.info("job %d: %s (%s)", job.id, status, kind.value)
        await self._display.notify(finished, explained.private, explained.admin)
        await self._display.publish(finished)

    # -- callbacks -----------------------------------------------------------------------------------

    async def handle_callback(self, ref: str, body: Mapping[str, Any]) -> int:
        """Take one callback body for the job `ref` names; return the HTTP status to answer with."""
        try:
            hint = self._backend.read_callback(body)
        except ValueError:
            return 400
        parsed = parse_ref(ref, self._store.identity)
        if parsed is None:
            return 404
        job_id, stored_ref = parsed
        jobs = self._store.jobs
        if not hint.final:
            # The common case in one guarded statement: a progress step of a job running as that backend job.
            # Only the figure is taken from the body; the update also tells the poller callbacks still come.
            noted = await jobs.note_progress(job_id, hint.job_id, hint.progress, stored_ref)
            if noted is not None:
                brief, figure, preview = noted
                self._display.progress(brief, figure, preview)
                if hint.preview_url and hint.preview_url != preview:
                    # A new preview is shown only once the backend, asked, has it: a forged body's image never is.
                    self._request_verify(brief.id, hint.job_id)
                return 200
        job = await jobs.get(job_id)
        if not self._belongs(job, ref, hint.job_id):
            return 404
        assert job is not None
        async with self._locks(job.id):
            fresh = await jobs.get(job.id)
            if fresh is None or not self._belongs(fresh, ref, hint.job_id):
                return 404
            if fresh.backend_job_id is None:
                if fresh.status not in (QUEUED, SUBMITTING):
                    return 404  # it never reached the backend, so no job of ours has that id
                # Its submission died half-way (a restart): the backend may have it; a read decides.
                self._request_verify(fresh.id, hint.job_id)
                return 202
            if fresh.is_final:
                late = fresh.status == FAILED and fresh.error_kind in LATE_COMPLETION_KINDS
                if hint.status is BackendStatus.DONE and late:
                    self._request_verify(fresh.id, hint.job_id)
                    return 202
                self._metrics.callback("duplicate")
                return 200  # a repeat or a stale update of a finished job
            if hint.final:
                self._request_verify(fresh.id, hint.job_id)
                return 202
            updated = await jobs.record_progress(fresh.id, hint.progress, None, None)
        if updated is not None and updated.progress != fresh.progress:
            self._display.schedule(updated)
        return 200

    def _belongs(self, job: JobRecord | None, ref: str, backend_job_id: str) -> bool:
        return (job is not None and job.ref == ref and job.backend == self._backend.facts.name
                and job.backend_job_id in (None, backend_job_id))

    def _request_verify(self, job_id: int, backend_job_id: str) -> None:
        """Re-read the backend's job for `job_id`, one read at a time per job.

        A callback arriving while a read is in flight asks for one more afterwards (its news may be newer than
        what that read saw), so five copies of a callback cost two reads, not five.
        """
        if job_id in self._verifying:
            self._verify_again[job_id] = backend_job_id
            return
        self._verifying.add(job_id)
        self._tasks.spawn(self._verify_loop(job_id, backend_job_id), f"verify-{job_id}")

    async def _verify_loop(self, job_id: int, backend_job_id: str) -> None:
        try:
            pending: str | None = backend_job_id
            while pending is not None:
                await self._verify(job_id, pending)
                pending = self._verify_again.pop(job_id, None)
        finally:
            self._verifying.discard(job_id)
            self._verify_again.pop(job_id, None)

    async def _verify(self, job_id: int, backend_job_id: str) -> None:
        try:
            truth = await self._backend.get(backend_job_id)
        except BackendError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                log.info("job %d: a callback named a job the backend does not know; ignored", job_id)
                return
            await self.backend_failed(exc)
            log.info("job %d: could not re-read it after a callback (%s); polling will", job_id, exc.kind.value)
            return
        await self.backend_answered()
        async with self._locks(job_id):
            fresh = await self._store.jobs.get(job_id)
            if fresh is None or truth.job_id != backend_job_id:
                return
            if fresh.backend_job_id is None:
                if fresh.status not in (QUEUED, SUBMITTING) or not self.made_by_us(fresh, truth):
                    return
                adopted = await self._store.jobs.mark_running(job_id, backend_job_id, truth.raw)
                if adopted is None:
                    return
                log.info("job %d: adopted %s, which the backend accepted before its submission was recorded (a "
                         "restart, or a call still returning)", job_id, backend_job_id)
                fresh = adopted
            elif fresh.backend_job_id != backend_job_id:
                return
            await self.apply(fresh, truth)
