"""The one place where the relay's error kinds become the words a Discord member or admin reads.

Every sentence names the backend in use through its facts (`useapi`, `the mj-proxy`), never a fixed name;
the backend's own words are kept as a detail for admins, never as a member's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.backends.base import BackendError, BackendFacts
from bot.jobs import ErrorKind

PAUSED_NOTE = ("Paused: Midjourney is waiting for a human to answer a moderation message on the shared account. "
               "An admin has been told; this job is sent as soon as the account is clear.")
NOTHING_SENT = "Nothing was sent."
DATABASE_RESET = "This result was made before the bot's database was reset; nothing was sent."

_REMIX_REPLY = re.compile(r"remix mode (?:turned|is|has been turned)\s+(?P<state>on|off)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Explained:
    """What the channel sees on the job's card, what the person who asked is told, and what admins are told."""

    public: str
    private: str
    # Operator details (status, the backend's own words) for a clicker with Manage Server; None: same as private.
    admin: str | None = None


def plural(count: float, noun: str) -> str:
    """`1 job`, `2 jobs`, `1.5 minutes`."""
    return f"{count:g} {noun}" if count == 1 else f"{count:g} {noun}s"


def jump_url(guild_id: int, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def nothing_sent(problem: str) -> str:
    """A refusal: what was wrong, and that nothing reached Midjourney, said once."""
    problem = problem.strip()
    if NOTHING_SENT.lower().rstrip(".") in problem.lower():
        return problem
    return f"{NOTHING_SENT} {problem}"


def bad_request(error: BackendError, facts: BackendFacts) -> str:
    """A refused request, as a sentence naming the button or field that was wrong."""
    who = facts.label_start
    if error.button is not None and error.offered is not None:
        return (f"`{error.button}` is not one of that job's buttons according to {facts.label} "
                f"(it offers {error.offered}).")
    if error.button is not None:
        return f"{who} does not support the button `{error.button}` (yet)."
    if error.field_name is not None and error.problem is not None:
        return f"{who} refused the request: the `{error.field_name}` field {error.problem}."
    return f"{who} refused the request: {error.detail}"


def _what_failed(error: BackendError) -> str:
    if error.kind is ErrorKind.TIMEOUT:
        return "did not answer in time"
    if error.status is None:
        return "could not be reached"
    return f"kept failing ({error.status or 'bad answer'})"


def explain(error: BackendError, facts: BackendFacts, *, attempts: int | None = None) -> Explained:
    """A backend error as a public card line, a private explanation and, for admins, the details."""
    kind = error.kind
    who = facts.label_start
    answered = f"{who} answered {error.status}" if error.status else f"{who} answered"
    if kind is ErrorKind.BAD_REQUEST:
        text = bad_request(error, facts)
        return Explained(text, text)
    if kind is ErrorKind.UNAUTHORISED:
        return Explained(
            f"The bot's {facts.account} is misconfigured; an admin has been told.",
            f"The bot's {facts.account} is misconfigured, so nothing can be sent now. An admin has been told.",
            f"{answered} ({error.detail}): the API token in {facts.token_setting} was refused{facts.token_refused}. "
            "Nothing is retried until it is fixed.",
        )
    if kind is ErrorKind.NO_SUBSCRIPTION:
        return Explained(
            f"The bot's {facts.account} has no subscription; an admin has been told.",
            f"The bot's {facts.account} has no active subscription, so nothing can be sent now. An admin has been "
            "told.",
            f"{answered} ({error.detail}): renew the subscription. Nothing is retried until then.",
        )
    if kind is ErrorKind.NOT_FOUND:
        kept = f" (it keeps jobs {facts.retention_days} days)" if facts.retention_days else ""
        kept_for = f" (it keeps jobs for {facts.retention_days} days)" if facts.retention_days else ""
        return Explained(
            f"{who} no longer knows the job this was made from{kept}.",
            f"{who} no longer knows that job{kept_for}, so its buttons cannot be used.",
        )
    if kind is ErrorKind.MODERATED:
        details = error.detail or "the prompt was refused"
        if error.word:
            details = f"{details} (the word `{error.word}`)"
        return Explained(
            "Midjourney declined this request; the person who asked has the details.",
            f"Midjourney declined this request: {details}",
        )
    if kind is ErrorKind.UNTRACKABLE:
        return Explained(
            f"Midjourney queued this job where {facts.label} cannot follow it, so it is marked failed "
            "(a result that still arrives will be posted here).",
            f"Midjourney queued this job where {facts.label} cannot track it, so it is marked failed. If the result "
            "still arrives it will be posted here; the bot sends fewer jobs at once for the next 5 minutes.",
        )
    if kind is ErrorKind.NEEDS_HUMAN:
        return Explained(
            "Midjourney is waiting for a human to answer a moderation message on the account; "
            "jobs are paused until an admin clears it.",
            "Midjourney has a pending moderation message for the shared account. Every job is paused until "
            "someone answers it in Discord and an admin runs `/relay reset`; yours is kept and sent after.",
        )
    if kind is ErrorKind.BUSY:
        return Explained("Midjourney is busy; the job waits and is sent again automatically.",
                         "Midjourney is busy; your job waits and will be sent again automatically.")
    if kind in (ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT):
        tries = f" after {attempts} tries" if attempts else " after several tries"
        what = _what_failed(error)
        return Explained(f"{who} {what}; gave up{tries}.",
                         f"{who} {what}{tries}, so the job failed; please try again later.",
                         f"{who} {what}{tries}: {error.detail or kind.value}")
    if kind is ErrorKind.UNSUPPORTED:
        text = error.detail or f"{who} cannot do that."
        return Explained(text, text)
    code = f" ({error.status})" if error.status else ""
    said = f": {error.detail}" if error.detail else "."
    return Explained(f"{who} answered with an error{code}.", f"{who} answered with an error{code}{said}")


def admin_alert(error: BackendError, facts: BackendFacts) -> str:
    """The one alert admins get for an account-wide problem."""
    if error.kind is ErrorKind.NEEDS_HUMAN:
        code = f" ({facts.label} answered {error.status})" if error.status else ""
        return (f"Midjourney has a pending moderation message (or CAPTCHA) on the {facts.account}, so every job is "
                f"paused{code}. Log into the Midjourney Discord account, answer the message, then run "
                f"`/relay reset`. Submissions also resume by themselves once {facts.label} shows the account clear.")
    explained = explain(error, facts)
    return explained.admin or f"{facts.label_start} answered {error.status or 'an error'}: {error.detail}"


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def busy_note(error: BackendError, facts: BackendFacts, wait: float) -> str:
    """The working message's note while a job waits for a free slot at the backend."""
    if error.rate_limited:
        return f"Discord is rate-limiting Midjourney: waiting, sent again in {_seconds(wait)}."
    return f"Midjourney is busy ({facts.label}'s queue is full): waiting, sent again in {_seconds(wait)}."


def retry_note(facts: BackendFacts, attempt: int, delay: float) -> str:
    """The working message's note while a job waits for the backend to answer again."""
    return f"{facts.label_start} is unreachable (try {attempt}): trying again in {_seconds(delay)}."


def backend_queue_note(facts: BackendFacts, ahead: int) -> str:
    """The working message's note while the job waits in the backend's own queue (`ahead` jobs before it)."""
    return f"Accepted into {facts.label}'s own queue: #{ahead + 1} in line there."


def backend_gone(backend: str) -> str:
    """The card of a job left unfinished at a backend the bot is no longer configured for."""
    return (f"This job was sent through {backend}, which this bot is no longer configured for, so it was stopped "
            "here; nothing more will be sent for it.")


def outage_note(facts: BackendFacts) -> str:
    """On every waiting or running job's card while the backend does not answer polls or lookups."""
    return (f"Waiting for {facts.label}, which is not answering right now: the job keeps its place and carries on "
            f"by itself once {facts.label} is back.")


def duplicate(button: str | None, parent_id: int | None, link: str | None) -> str:
    """A one-shot button used again: that result already exists, and where it is shown."""
    what = f"{button} of #{parent_id}" if parent_id is not None else (button or "That button")
    where = f": {link}" if link else "."
    return f"{what} was already made, so nothing new was sent. It is shown here{where}"


def timed_out(minutes: float) -> str:
    """The card of a job that stayed unfinished far longer than Midjourney takes."""
    took = plural(minutes, "minute") if minutes >= 1 else plural(float(f"{minutes * 60:.3g}"), "second")
    return (f"No result from Midjourney after {took}; the job is marked failed "
            "(a result that still arrives will be posted).")


def reference_too_long(facts: BackendFacts, length: int, *, url: bool) -> str:
    """The bot's own callback URL or reference would be refused by the backend."""
    if url:
        return (f"The callback address (PUBLIC_URL plus the bot's path) is {length} characters; {facts.label} "
                f"accepts at most {facts.callback_limit}. An admin must shorten PUBLIC_URL.")
    return f"The job reference is longer than {facts.label}'s {facts.ref_limit} characters."


def account_remix_state(reply: str | None) -> bool | None:
    """Midjourney's answer to /prefer remix ("Remix mode turned on!") as True/False, None if unreadable."""
    if not reply:
        return None
    match = _REMIX_REPLY.search(reply)
    return None if match is None else match["state"].lower() == "on"

# A job filed with images whose images were not all kept before the bot stopped: never sent without them.
FILING_CUT_SHORT = ("The bot stopped while keeping this job's images, so it was not sent and nothing was spent. "
                    "Please run it again.")
