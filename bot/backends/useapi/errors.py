"""Typed errors for useapi.net v2: one class per documented HTTP status under a common base."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

__all__ = [
    "BadRequest",
    "ButtonConflict",
    "JobNotFound",
    "JobQueued",
    "PaymentRequired",
    "PendingModMessage",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UseapiConnectionError",
    "UseapiError",
    "UseapiTimeout",
    "error_body",
    "error_for",
]

# A non-JSON error page (a proxy's HTML, say) is kept only this long so logs stay readable.
MAX_TEXT_BODY = 500


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class UseapiError(Exception):
    """A useapi call that did not succeed; carries the status and the parsed body."""

    status: int
    body: dict[str, Any]
    error: str
    error_details: str | None
    jobid: str | None

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, reason: str | None = None) -> None:
        self.status = status
        self.body = dict(body) if body else {}
        raw_error = self.body.get("error")
        self.error = _opt_str(raw_error) or reason or (_reason(status) if status else "connection failed")
        self.error_details = _opt_str(self.body.get("errorDetails"))
        self.jobid = _opt_str(self.body.get("jobid"))
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"useapi {self.status}: {self.error}" if self.status else f"useapi: {self.error}"
        if self.error_details:
            text += f" ({self.error_details})"
        return text


class BadRequest(UseapiError):
    """400: a missing or too long field, or a button the job does not offer."""


class Unauthorized(UseapiError):
    """401: the useapi API token is wrong."""


class PaymentRequired(UseapiError):
    """402: the useapi account has no subscription."""


class JobNotFound(UseapiError):
    """404: useapi does not know that job (or it is older than 31 days)."""


class ButtonConflict(UseapiError):
    """409: that U button was already clicked; .jobid is the job it made."""

    button: str | None

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, reason: str | None = None) -> None:
        super().__init__(status, body, reason=reason)
        self.button = _opt_str(self.body.get("button"))


class Unprocessable(UseapiError):
    """422: Midjourney moderated the prompt or rejected its parameters; .error_details has its words."""

    job_status: str | None

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, reason: str | None = None) -> None:
        super().__init__(status, body, reason=reason)
        self.job_status = _opt_str(self.body.get("status"))


def _retry_after(details: Any) -> float | None:
    # Discord's own 429 body arrives as a JSON string inside errorDetails.
    parsed: Any = details
    if isinstance(details, str):
        try:
            parsed = json.loads(details)
        except ValueError:
            return None
    if not isinstance(parsed, dict):
        return None
    value = parsed.get("retry_after")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


class TooManyRequests(UseapiError):
    """429: either useapi's queue is full (maxJobs) or Discord rate-limited useapi."""

    executing_jobs: list[str]
    queue_full: bool
    retry_after: float | None

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, reason: str | None = None) -> None:
        super().__init__(status, body, reason=reason)
        raw_jobs = self.body.get("executingJobs")
        self.executing_jobs = [str(j) for j in raw_jobs] if isinstance(raw_jobs, list) else []
        self.queue_full = "executingJobs" in self.body or "Maximum of" in self.error
        self.retry_after = _retry_after(self.body.get("errorDetails"))


class JobQueued(UseapiError):
    """504 "Job queued": Midjourney queued the job and useapi cannot follow it; .jobid is marked failed."""


class PendingModMessage(UseapiError):
    """596: a Midjourney moderation message or CAPTCHA blocks the account until it is reset."""

    channel: str | None

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, reason: str | None = None) -> None:
        super().__init__(status, body, reason=reason)
        self.channel = _opt_str(self.body.get("channel"))


class ServerError(UseapiError):
    """Any other 5xx, or a status or body the contract does not describe."""


class UseapiConnectionError(UseapiError):
    """useapi could not be reached: refused, reset, DNS; status is 0."""

    def __init__(self, message: str) -> None:
        super().__init__(0, {"error": message})


class UseapiTimeout(UseapiConnectionError):
    """useapi did not answer within the client's timeout."""


_BY_STATUS: dict[int, type[UseapiError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: PaymentRequired,
    404: JobNotFound,
    409: ButtonConflict,
    422: Unprocessable,
    429: TooManyRequests,
    596: PendingModMessage,
}


def error_body(text: str) -> dict[str, Any]:
    """Parse an error answer's text; a body that is not a JSON object becomes {"error": <its text>}."""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    stripped = text.strip()
    return {"error": stripped[:MAX_TEXT_BODY]} if stripped else {}


def error_for(status: int, body: dict[str, Any]) -> UseapiError:
    """Turn a non-2xx useapi answer into its exception."""
    if status == 504:
        # A gateway's own 504 (no jobid, no "Job queued") says nothing about a job: treat it as an outage.
        error = _opt_str(body.get("error")) or ""
        if "jobid" in body or error.lower().startswith("job queued"):
            return JobQueued(status, body)
        return ServerError(status, body)
    return _BY_STATUS.get(status, ServerError)(status, body)
