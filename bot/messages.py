"""The one place where useapi's answers become the words a Discord user reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.backends.useapi import errors

# Local codes for failures that useapi did not answer with a status of its own.
TIMEOUT_CODE = 1408  # the job stayed non-final longer than Midjourney ever takes
UNREACHABLE_CODE = 1503  # useapi could not be reached after every retry
IMAGE_CODE = 1415  # the result image could not be fetched or uploaded
LOCAL_REFUSAL_CODE = 1400  # the bot itself refused to send a request useapi would reject

# useapi refuses replyUrl and replyRef longer than this (jobs/button and jobs/imagine pages).
REPLY_FIELD_LIMIT = 1024

PAUSED_NOTE = ("Paused: Midjourney is waiting for a human to answer a moderation message on the shared account. "
               "An admin has been told; this job is sent as soon as the account is clear.")

_NOT_SUPPORTED = re.compile(r"button (?P<button>.+?) not supported")
_NOT_IN_JOB = re.compile(r"button (?P<button>.+?) not found in job \S+ buttons (?P<buttons>.*)")
_FIELD = re.compile(r"^(?P<field>[A-Za-z ]+?) (?P<problem>is missing|is too long|must be .+)$")
_REMIX_REPLY = re.compile(r"remix mode (?:turned|is|has been turned)\s+(?P<state>on|off)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Explained:
    """What the channel sees on the job's card, what the person who asked is told, and what admins are told."""

    public: str
    private: str
    # Operator details (status, useapi's own words) for a clicker with Manage Server; None: same as private.
    admin: str | None = None


def jump_url(guild_id: int, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def bad_request(error: str) -> str:
    """useapi's 400 text, as a sentence naming the field or button that was wrong."""
    if match := _NOT_SUPPORTED.search(error):
        return f"useapi does not support the button `{match['button']}` (yet)."
    if match := _NOT_IN_JOB.search(error):
        return (f"`{match['button']}` is not one of that job's buttons according to useapi "
                f"(it offers {match['buttons']}).")
    if match := _FIELD.match(error.strip()):
        return f"useapi refused the request: the `{match['field']}` field {match['problem']}."
    return f"useapi refused the request: {error}"


def explain(exc: errors.UseapiError, *, attempts: int | None = None) -> Explained:
    """Turn a useapi error into a public card line, a private explanation and, for admins, the details."""
    if isinstance(exc, errors.BadRequest):
        text = bad_request(exc.error)
        return Explained(text, text)
    if isinstance(exc, errors.Unauthorized):
        return Explained(
            "The bot's useapi account is misconfigured; an admin has been told.",
            "The bot's useapi account is misconfigured, so nothing can be sent now. An admin has been told.",
            f"useapi answered 401 ({exc.error}): the API token in USEAPI_TOKEN was refused. Nothing is retried "
            "until it is fixed.",
        )
    if isinstance(exc, errors.PaymentRequired):
        return Explained(
            "The bot's useapi account has no subscription; an admin has been told.",
            "The bot's useapi account has no active subscription, so nothing can be sent now. An admin has been "
            "told.",
            f"useapi answered 402 ({exc.error}): renew the useapi.net subscription. Nothing is retried until "
            "then.",
        )
    if isinstance(exc, errors.JobNotFound):
        return Explained(
            "useapi no longer knows the job this was made from (it keeps jobs 31 days).",
            "useapi no longer knows that job (it keeps jobs for 31 days), so its buttons cannot be used.",
        )
    if isinstance(exc, errors.Unprocessable):
        details = exc.error_details or exc.error
        return Explained(
            "Midjourney declined this request; the person who asked has the details.",
            f"Midjourney declined this request: {details}",
        )
    if isinstance(exc, errors.JobQueued):
        return Explained(
            "Midjourney queued this job where useapi cannot follow it, so it is marked failed "
            "(a result that still arrives will be posted here).",
            "Midjourney queued this job where useapi cannot track it, so it is marked failed. If the result "
            "still arrives it will be posted here; the bot sends fewer jobs at once for the next 5 minutes.",
        )
    if isinstance(exc, errors.PendingModMessage):
        return Explained(
            "Midjourney is waiting for a human to answer a moderation message on the account; "
            "jobs are paused until an admin clears it.",
            "Midjourney has a pending moderation message for the shared account. Every job is paused until "
            "someone answers it in Discord and an admin runs `/relay reset`; yours is kept and sent after.",
        )
    if isinstance(exc, errors.TooManyRequests):
        return Explained("Midjourney is busy; the job waits and is sent again automatically.",
                         "Midjourney is busy; your job waits and will be sent again automatically.")
    if isinstance(exc, errors.UseapiConnectionError | errors.ServerError):
        tries = f" after {attempts} tries" if attempts else " after several tries"
        what = "did not answer in time" if isinstance(exc, errors.UseapiTimeout) else (
            "could not be reached" if isinstance(exc, errors.UseapiConnectionError)
            else f"kept failing ({exc.status or 'bad answer'})")
        return Explained(f"useapi {what}; gave up{tries}.",
                         f"useapi {what}{tries}, so the job failed; please try again later.",
                         f"useapi {what}{tries}: {exc}")
    return Explained(f"useapi answered an error ({exc.status}).", f"useapi answered an error: {exc.error}")


def admin_alert(exc: errors.UseapiError) -> str:
    """The one alert admins get for an account-wide useapi problem."""
    if isinstance(exc, errors.PendingModMessage):
        return ("Midjourney has a pending moderation message (or CAPTCHA) on the useapi account, so every job is "
                "paused (useapi answered 596). Log into the Midjourney Discord account, answer the message, then "
                "run `/relay reset`. Submissions also resume by themselves once useapi shows the account clear.")
    explained = explain(exc)
    return explained.admin or f"useapi answered {exc.status}: {exc.error}"


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def busy_note(exc: errors.TooManyRequests, wait: float) -> str:
    """The working message's note while a job waits after a 429."""
    if exc.queue_full:
        return f"Midjourney is busy (useapi's queue is full): waiting, sent again in {_seconds(wait)}."
    return f"Discord is rate-limiting Midjourney: waiting, sent again in {_seconds(wait)}."


def retry_note(attempt: int, delay: float) -> str:
    """The working message's note while a job waits for useapi to answer again."""
    return f"useapi is unreachable (try {attempt}): trying again in {_seconds(delay)}."


def duplicate(button: str | None, parent_id: int | None, link: str | None) -> str:
    """A click that useapi answered 409: that upscale already exists, and where it is shown."""
    what = f"{button} of #{parent_id}" if parent_id is not None else (button or "That button")
    where = f": {link}" if link else "."
    return f"{what} was already made, so nothing new was sent. It is shown here{where}"


def account_remix_state(reply: str | None) -> bool | None:
    """Midjourney's answer to /prefer remix ("Remix mode turned on!") as True/False, None if unreadable."""
    if not reply:
        return None
    match = _REMIX_REPLY.search(reply)
    return None if match is None else match["state"].lower() == "on"
