"""useapi v2's answers in the relay's vocabulary: its jobs as `JobUpdate`s, its errors as `BackendError`s.

Pure functions, one direction: everything useapi-shaped stops here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.backends.base import BackendError, BackendStatus, Button, ErrorKind, JobUpdate, Media
from bot.backends.replies import described_prompts, seed_in

from . import errors
from .facts import ONE_SHOT_BUTTONS
from .models import Job

_STATUSES = {
    "completed": BackendStatus.DONE,
    "failed": BackendStatus.FAILED,
    "moderated": BackendStatus.MODERATED,
    "cancelled": BackendStatus.CANCELLED,
}
# useapi's 400 texts (jobs/button page): a button it does not know, a button the job does not offer, a field.
_NOT_SUPPORTED = re.compile(r"button (?P<button>.+?) not supported")
_NOT_IN_JOB = re.compile(r"button (?P<button>.+?) not found in job \S+ buttons (?P<buttons>.*)")
_FIELD = re.compile(r"^(?P<field>[A-Za-z ]+?) (?P<problem>is missing|is too long|must be .+)$")


def status_of(job: Job) -> BackendStatus:
    """useapi's created/started/progress are all 'running': it has no queue of its own that it reports."""
    return _STATUSES.get(job.status or "", BackendStatus.RUNNING)


def media_of(job: Job) -> tuple[Media, ...]:
    """The job's files: its attachments, else its first embed's image."""
    found = tuple(Media(url=a.url, content_type=a.content_type, size=a.size, width=a.width, height=a.height,
                        filename=a.filename) for a in job.attachments if a.url)
    if found:
        return found
    for embed in job.embeds[:1]:
        image = embed.get("image")
        if isinstance(image, dict) and isinstance(image.get("url"), str):
            return (Media(url=image["url"], width=image.get("width"), height=image.get("height")),)
    return ()


def created_at(job: Job) -> float | None:
    """useapi's `created` (ISO 8601, UTC) as Unix time."""
    if not job.created:
        return None
    try:
        return datetime.fromisoformat(job.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def texts_of(job: Job) -> list[str]:
    """Midjourney's words in a job: its embeds' descriptions, then its message content."""
    found = [embed["description"] for embed in job.embeds if isinstance(embed.get("description"), str)]
    return [text for text in [*found, job.content or ""] if text]


def reply_of(job: Job) -> str:
    """Midjourney's answer to a settings command (remix, fast, relax, turbo): the content, else an embed's."""
    return job.content or next(iter(texts_of(job)), "")


def prompts_of(job: Job) -> tuple[str, ...]:
    """The prompts of a finished describe: Midjourney posts them as its embed's description."""
    if job.verb != "describe" or job.status != "completed":
        return ()
    for text in texts_of(job):
        if prompts := described_prompts(text):
            return prompts
    return ()


def seed_of(job: Job) -> str:
    """The seed a finished seed_async job's answer names; BackendError when it did not finish with one."""
    if job.status != "completed":
        words = job.errorDetails or job.error or f"the seed job was {job.status}"
        raise BackendError(ErrorKind.JOB_FAILED, f"Midjourney gave no seed (useapi job {job.jobid}): {words}")
    seed = seed_in(*texts_of(job))
    if seed is None:
        # A completed answer without the seed in it is not what the contract describes: treated as an outage.
        raise BackendError(ErrorKind.UNAVAILABLE, f"Midjourney's answer names no seed (useapi job {job.jobid}): "
                                                  f"{reply_of(job)[:200]!r}")
    return seed


def update_of(job: Job, raw: dict[str, Any] | None = None) -> JobUpdate:
    """A useapi job as the relay sees it; `raw` is the body to keep (masked), else the job's own."""
    status = status_of(job)
    final = status is not BackendStatus.RUNNING
    media = media_of(job)
    progress = job.progress
    error = None
    if status in (BackendStatus.FAILED, BackendStatus.MODERATED, BackendStatus.CANCELLED):
        error = job.errorDetails or job.error or f"Midjourney reported the job {job.status}."
    return JobUpdate(
        job_id=job.jobid,
        status=status,
        progress=None if progress is None else min(progress, 100),
        # A progress update may carry Midjourney's blurry preview as its attachment.
        preview_url=None if final or not media else media[0].url,
        media=media if status is BackendStatus.DONE else (),
        buttons=tuple(Button(name, name) for name in job.buttons) if status is BackendStatus.DONE else (),
        done_buttons=tuple(c.button for c in job.children if c.button in ONE_SHOT_BUTTONS and c.button),
        ref=job.replyRef,
        callback_url=job.replyUrl,
        prompt=job.prompt,
        error=error,
        prompts=prompts_of(job),
        created_at=created_at(job),
        raw=raw if raw is not None else job.model_dump(),
    )


def bad_request(exc: errors.UseapiError) -> BackendError:
    """useapi's 400, with the button or field it names."""
    text = exc.error
    if match := _NOT_SUPPORTED.search(text):
        return BackendError(ErrorKind.BAD_REQUEST, text, status=exc.status, button=match["button"])
    if match := _NOT_IN_JOB.search(text):
        return BackendError(ErrorKind.BAD_REQUEST, text, status=exc.status, button=match["button"],
                            offered=match["buttons"])
    if match := _FIELD.match(text.strip()):
        return BackendError(ErrorKind.BAD_REQUEST, text, status=exc.status, field_name=match["field"],
                            problem=match["problem"])
    return BackendError(ErrorKind.BAD_REQUEST, text, status=exc.status)


def error_of(exc: errors.UseapiError) -> BackendError:
    """One useapi error as the relay's kind, with what each kind needs."""
    if isinstance(exc, errors.BadRequest):
        return bad_request(exc)
    if isinstance(exc, errors.Unauthorized):
        return BackendError(ErrorKind.UNAUTHORISED, exc.error, status=exc.status)
    if isinstance(exc, errors.PaymentRequired):
        return BackendError(ErrorKind.NO_SUBSCRIPTION, exc.error, status=exc.status)
    if isinstance(exc, errors.JobNotFound):
        return BackendError(ErrorKind.NOT_FOUND, exc.error, status=exc.status)
    if isinstance(exc, errors.ButtonConflict):
        return BackendError(ErrorKind.ALREADY_DONE, exc.error, status=exc.status, job_id=exc.jobid,
                            button=exc.button)
    if isinstance(exc, errors.Unprocessable):
        return BackendError(ErrorKind.MODERATED, exc.error_details or exc.error, status=exc.status)
    if isinstance(exc, errors.TooManyRequests):
        return BackendError(ErrorKind.BUSY, exc.error, status=exc.status, retry_after=exc.retry_after,
                            rate_limited=not exc.queue_full)
    if isinstance(exc, errors.JobQueued):
        return BackendError(ErrorKind.UNTRACKABLE, exc.error, status=exc.status, job_id=exc.jobid)
    if isinstance(exc, errors.PendingModMessage):
        return BackendError(ErrorKind.NEEDS_HUMAN, exc.error_details or exc.error, status=exc.status,
                            account=exc.channel)
    if isinstance(exc, errors.UseapiTimeout):
        return BackendError(ErrorKind.TIMEOUT, exc.error)
    if isinstance(exc, errors.UseapiConnectionError):
        return BackendError(ErrorKind.UNAVAILABLE, exc.error)
    # ServerError: any other status or an answer the contract does not describe. It says nothing about the
    # request itself, so it is treated as an outage: retried with backoff.
    return BackendError(ErrorKind.UNAVAILABLE, exc.error, status=exc.status)
