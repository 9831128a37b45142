"""The simulator's jobs: their bodies, their clock (started, progress, completed), their result images, and
the replyUrl callbacks that report every change, in order per job."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.backends.simkit import Background, SimEngine, run_clock, stop_clock
from bot.backends.useapi.facts import DEFAULT_MAX_JOBS, EXECUTING_STATUSES

from .images import render_png
from .jobs import IdMaker, attachment, file_name, mask, now_iso, progress_content, waiting_content
from .results import result_of

__all__ = ["JobEngine"]

log = logging.getLogger(__name__)


@dataclass
class _JobMeta:
    # scheme://host the job was asked on, so its image is served from where the caller reached us;
    # None for a loaded job, whose image is served from the engine's root.
    root: str | None
    # On time.monotonic(), the clock asyncio's loop keeps, so jobs can be loaded before the loop runs.
    started_at: float
    lifecycle: asyncio.Task[None] | None = None
    # Callbacks of one job go out in the order they were made, even when a receiver is slow.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JobEngine(SimEngine):
    """Every job the simulator knows, the ones executing now, the files they made and the callbacks sent.

    job_seconds None is manual mode: jobs run until complete() or fail(). Callbacks need open() first;
    close() cancels the clocks and undelivered callbacks, and nothing is sent after it.
    """

    def __init__(
        self,
        *,
        job_seconds: float | None,
        progress_steps: int,
        channel: str,
        server: str,
        image_bytes: int | None,
        callback_timeout: float,
        stale_seconds: float,
    ) -> None:
        super().__init__(callback_timeout=callback_timeout)
        self.channel = channel
        self.server = server
        # Where the images of loaded jobs are served (http://host:port); the server sets it once bound.
        self.root: str | None = None
        self.jobs: dict[str, dict[str, Any]] = {}
        self.max_executing_seen = 0
        self.ids = IdMaker()
        self._job_seconds = job_seconds
        self._progress_steps = max(0, progress_steps)
        self._image_bytes = image_bytes
        self._stale_seconds = stale_seconds
        self._meta: dict[str, _JobMeta] = {}
        # Insertion-ordered set of executing jobids, so counting never scans finished jobs.
        self._executing: dict[str, None] = {}
        self._files: dict[str, bytes] = {}

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The clocks and callback deliveries still running."""
        return self._background.tasks

    def file(self, name: str) -> bytes | None:
        """A result image by its served name."""
        return self._files.get(name)

    # ---- what is executing

    def executing(self) -> list[str]:
        """The jobids executing now; jobs running past stale_seconds are failed here, as useapi does."""
        now = time.monotonic()
        for jobid in list(self._executing):
            if now - self._meta[jobid].started_at > self._stale_seconds:
                log.info("simulated job %s ran too long: failed", jobid)
                self.set_final(jobid, "failed", error="Job failed to complete within 30 minutes")
        return list(self._executing)

    # ---- making jobs

    def new_jobid(self, channel: str) -> str:
        """A jobid no known job has (loaded jobs included)."""
        jobid = self.ids.jobid(channel)
        while jobid in self.jobs:
            jobid = self.ids.jobid(channel)
        return jobid

    def new_job(
        self, root: str, body: dict[str, Any], *, verb: str, prompt: str | None, link_child: bool = True
    ) -> dict[str, Any]:
        """File a new job asked for with this request body on scheme://host root; it is not running yet."""
        channel = str(body.get("channel") or self.channel)
        jobid = self.new_jobid(channel)
        now = now_iso()
        job: dict[str, Any] = {"jobid": jobid, "verb": verb, "status": "started", "created": now, "updated": now}
        # A seed request runs on the job it asks about, as a button's job does, but is not one of its children.
        parent = self.jobs.get(str(body.get("jobid"))) if verb in ("button", "seed_async") else None
        if verb == "button":
            job["button"] = body.get("button")
        if verb in ("button", "seed_async"):
            job["parentJobId"] = body.get("jobid")
        if prompt is not None:
            job["prompt"] = prompt
        job.update(
            discord=mask(body.get("discord")),
            channel=parent.get("channel", channel) if parent else channel,
            server=self.server,
        )
        if verb in ("imagine", "button", "blend", "describe"):
            job["maxJobs"] = body.get("maxJobs", DEFAULT_MAX_JOBS)
        for name in ("replyUrl", "replyRef"):
            if isinstance(body.get(name), str):
                job[name] = body[name]
        job["messageId"] = self.ids.snowflake()
        if prompt is not None:
            job["content"] = waiting_content(prompt)
        job["timestamp"] = datetime.now(UTC).isoformat()
        job["code"] = 200
        self.jobs[jobid] = job
        self._meta[jobid] = _JobMeta(root=root, started_at=time.monotonic())
        if parent is not None and link_child and verb == "button":
            child = {"button": job["button"], "jobid": jobid, "messageId": job["messageId"]}
            parent.setdefault("children", []).append(child)
        return job

    def refuse(
        self, path: str, root: str, body: dict[str, Any], status: str, code: int, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Keep a job refused at submission (moderated, queued, pending mod) as useapi does; return its body."""
        verb = path.rsplit("/", 1)[-1] if path.endswith(("jobs/button", "jobs/blend", "jobs/describe")) else "imagine"
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            parent = self.jobs.get(str(body.get("jobid")), {})
            prompt = parent.get("prompt", "") if verb == "button" else None if verb == "describe" else ""
        # Only a queued job (504) still runs at Midjourney, so only it takes the button on its parent.
        job = self.new_job(root, body, verb=verb, prompt=prompt, link_child=code == 504)
        fields = {k: v for k, v in fields.items() if k != "code"}
        job.update(fields, status=status, updated=now_iso())
        stored = copy.deepcopy(job)
        job["code"] = code
        self.jobs[job["jobid"]] = stored
        return job

    def load(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Know these useapi job bodies by jobid; executing ones run with no clock, until complete() or fail()."""
        now = time.monotonic()
        for jobid, given in jobs.items():
            job = copy.deepcopy(given)
            if job.setdefault("jobid", jobid) != jobid or not isinstance(job.get("status"), str):
                raise ValueError(f"job {jobid!r}: not a useapi job body with this jobid and a status")
            if jobid in self._meta:
                self.stop_clock(jobid)
                self._executing.pop(jobid, None)
            self.jobs[jobid] = job
            self._meta[jobid] = _JobMeta(root=None, started_at=now)
            if job["status"] in EXECUTING_STATUSES:
                self._executing[jobid] = None
        self.max_executing_seen = max(self.max_executing_seen, len(self._executing))
        self._background.notify()

    # ---- the clock

    def launch(self, jobid: str) -> None:
        """Count a new job as executing, report it, and start its clock unless in manual mode."""
        self._executing[jobid] = None
        self.max_executing_seen = max(self.max_executing_seen, len(self._executing))
        self.send_callback(jobid)
        if self._job_seconds is not None:
            # Midjourney shows no percentages while it describes an image or looks a seed up: no progress steps.
            steps = 0 if self.jobs[jobid].get("verb") in ("describe", "seed_async") else self._progress_steps
            self._meta[jobid].lifecycle = self._background.spawn(self._run(jobid, self._job_seconds, steps))

    def complete_queued_later(self, jobid: str) -> None:
        """A queued job (504) still completes after job_seconds, as Midjourney would; none in manual mode."""
        if self._job_seconds is not None:
            self._meta[jobid].lifecycle = self._background.spawn(self._run_queued(jobid, self._job_seconds))

    async def _run(self, jobid: str, seconds: float, steps: int) -> None:
        await run_clock(seconds, steps, running=lambda: self.jobs[jobid]["status"] in EXECUTING_STATUSES,
                        progress=lambda percent: self.set_progress(jobid, percent),
                        finish=lambda: self.finish(jobid))

    async def _run_queued(self, jobid: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.jobs[jobid]["status"] == "failed":
            await self.finish(jobid)

    def stop_clock(self, jobid: str) -> None:
        """Stop the job's clock, unless it is the caller."""
        stop_clock(self._meta[jobid].lifecycle)
        self._meta[jobid].lifecycle = None

    # ---- changes of status

    def set_progress(self, jobid: str, percent: int, *, preview: bool = False) -> asyncio.Task[None] | None:
        """Report progress (with Midjourney's blurry preview as the message's attachment, when asked); returns
        the callback's delivery, if there is one."""
        job = self.jobs[jobid]
        job.update(
            status="progress",
            updated=now_iso(),
            content=progress_content(job.get("prompt", ""), job.get("button"), percent),
        )
        if preview:
            png, side = render_png(f"{jobid}-{percent}", 64, False, None)
            name = file_name(f"{jobid}-preview-{percent}")
            self._files[name] = png
            root = self._meta[jobid].root or self.root or ""
            job["attachments"] = [attachment(root, name, len(png), side, self.ids.snowflake())]
        return self.send_callback(jobid)

    def set_final(self, jobid: str, status: str, *, error: str | None = None) -> asyncio.Task[None] | None:
        """End the job with this status; returns the callback's delivery, if there is one."""
        job = self.jobs[jobid]
        self._executing.pop(jobid, None)
        self.stop_clock(jobid)
        job.update(status=status, updated=now_iso())
        if error is not None:
            job["error"] = error
        return self.send_callback(jobid)

    def cancel(self, jobid: str) -> None:
        """Cancel the job if it is executing."""
        if self.jobs[jobid]["status"] in EXECUTING_STATUSES:
            self.stop_clock(jobid)
            self.set_final(jobid, "cancelled")

    async def finish(self, jobid: str) -> asyncio.Task[None] | None:
        """Complete the job with its result (results.py); returns the callback's delivery, if there is one."""
        job = self.jobs[jobid]
        made = await result_of(job, self._meta[jobid].root or self.root or "", self.ids, self._image_bytes)
        self._files.update(made.files)
        job.update(made.fields)
        job.pop("error", None)
        job.pop("errorDetails", None)
        return self.set_final(jobid, "completed")

    # ---- controls for tests: each waits for the callback it causes

    async def complete(self, jobid: str) -> None:
        """Complete a job now (any status) and wait for its callback to be delivered."""
        self.stop_clock(jobid)
        await Background.settle(await self.finish(jobid))

    async def fail(self, jobid: str, error: str) -> None:
        """Fail a job now and wait for its callback to be delivered."""
        self.stop_clock(jobid)
        await Background.settle(self.set_final(jobid, "failed", error=error))

    async def progress(self, jobid: str, percent: int, *, preview: bool = False) -> None:
        """Report progress on a job now and wait for its callback to be delivered."""
        await Background.settle(self.set_progress(jobid, percent, preview=preview))

    # ---- callbacks

    def send_callback(self, jobid: str) -> asyncio.Task[None] | None:
        """POST the job as it is now to its replyUrl, after its earlier callbacks; wake the waiters."""
        self._background.notify()
        job = self.jobs[jobid]
        url = job.get("replyUrl")
        if not url:
            return None
        payload = copy.deepcopy(job)
        payload["code"] = 200
        return self._background.deliver(self._meta[jobid].lock, url, payload)
