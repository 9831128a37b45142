"""The one place where useapi's answers become the words a Discord user reads."""

from __future__ import annotations

from dataclasses import dataclass

from bot.useapi import errors

# Local codes for failures that useapi did not answer with a status of its own.
TIMEOUT_CODE = 1408  # the job stayed non-final longer than Midjourney ever takes
UNREACHABLE_CODE = 1503  # useapi could not be reached after every retry
IMAGE_CODE = 1415  # the result image could not be fetched or uploaded


@dataclass(frozen=True, slots=True)
class Explained:
    """What the channel sees on the job's card, and what only the person who asked is told."""

    public: str
    private: str


def explain(exc: errors.UseapiError) -> Explained:
    """Turn a useapi error into a public card line and a private explanation."""
    if isinstance(exc, errors.BadRequest):
        return Explained("useapi refused the request.", f"useapi refused the request: {exc.error}")
    if isinstance(exc, errors.Unauthorized):
        return Explained(
            "The bot's useapi account is misconfigured; an admin has been told.",
            "The bot's useapi account is misconfigured (the API token was refused). An admin has been told.",
        )
    if isinstance(exc, errors.PaymentRequired):
        return Explained(
            "The bot's useapi account has no active subscription; an admin has been told.",
            "The bot's useapi account has no active subscription. An admin has been told.",
        )
    if isinstance(exc, errors.JobNotFound):
        return Explained(
            "useapi no longer knows the job this was made from (jobs are kept 31 days).",
            "useapi no longer knows that job: it keeps jobs for 31 days.",
        )
    if isinstance(exc, errors.Unprocessable):
        details = exc.error_details or exc.error
        return Explained(
            "Midjourney declined this request; the owner has the details.",
            f"Midjourney declined this request: {details}",
        )
    if isinstance(exc, errors.JobQueued):
        return Explained(
            "Midjourney queued this job where useapi cannot follow it; it is marked failed "
            "(a result that still arrives will be posted).",
            "Midjourney queued this job where useapi cannot track it. If the result still arrives it will be "
            "posted here; the bot is sending fewer jobs at once for a few minutes.",
        )
    if isinstance(exc, errors.PendingModMessage):
        return Explained(
            "Midjourney is waiting for a human to answer a moderation message on the account; "
            "jobs are paused until an admin clears it.",
            "Midjourney has a pending moderation message for the shared account. Jobs are paused until an "
            "admin acknowledges it and runs /relay reset.",
        )
    if isinstance(exc, errors.TooManyRequests):
        return Explained("Midjourney is busy; the job waits and is sent again automatically.",
                         "Midjourney is busy; your job waits and will be sent again automatically.")
    if isinstance(exc, errors.UseapiConnectionError | errors.ServerError):
        return Explained("useapi could not be reached; gave up after several tries.",
                         "useapi could not be reached after several tries; please try again later.")
    return Explained(f"useapi answered an error ({exc.status}).", f"useapi answered an error: {exc.error}")
