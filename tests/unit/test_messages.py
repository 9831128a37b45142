"""The words a member or an admin reads for each error kind, and the working notes on a job's card.

The useapi errors are built the way the relay meets them (useapi's answer → `error_for` → `error_of`), so the
sentences checked are the ones a member really gets.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot import messages
from bot.backends.base import BackendError, BackendFacts
from bot.backends.useapi import answers, errors
from bot.backends.useapi.backend import FACTS
from bot.backends.useapi.simulator.answers import DISCORD_429_BODY, MODERATED_BODY
from bot.jobs import ErrorKind
from bot.limits import Allowance, Usage

MJ_PROXY = BackendFacts(
    name="mjproxy", label="the mj-proxy", account="mj-proxy account", token_setting="MJPROXY_TOKEN",
    prompt_limit=4000, ref_limit=255, callback_limit=2000, one_shot=frozenset({"U1", "U2", "U3", "U4"}),
)


def useapi(status: int, body: dict[str, Any]) -> BackendError:
    return answers.error_of(errors.error_for(status, body))


# -- explain, for useapi ---------------------------------------------------------------------------------------


def test_a_field_useapi_refused_is_named() -> None:
    text = "useapi refused the request: the `prompt` field is too long."
    assert messages.explain(useapi(400, {"error": "prompt is too long"}), FACTS) == messages.Explained(text, text)


def test_a_button_useapi_does_not_know() -> None:
    explained = messages.explain(useapi(400, {"error": "button Vary (Region) not supported"}), FACTS)
    assert explained.public == explained.private == "useapi does not support the button `Vary (Region)` (yet)."


def test_a_button_the_job_does_not_offer_lists_what_it_does() -> None:
    error = useapi(400, {"error": 'button U5 not found in job j1 buttons ["U1","U2"]'})
    assert messages.explain(error, FACTS).private == (
        '`U5` is not one of that job\'s buttons according to useapi (it offers ["U1","U2"]).')


def test_any_other_refusal_keeps_useapis_words() -> None:
    assert messages.explain(useapi(400, {"error": "Something odd"}), FACTS).private == (
        "useapi refused the request: Something odd")


def test_a_refused_token() -> None:
    assert messages.explain(useapi(401, {"error": "Unauthorized"}), FACTS) == messages.Explained(
        "The bot's useapi account is misconfigured; an admin has been told.",
        "The bot's useapi account is misconfigured, so nothing can be sent now. An admin has been told.",
        "useapi answered 401 (Unauthorized): the API token in USEAPI_TOKEN was refused. Nothing is retried until "
        "it is fixed.",
    )


def test_no_subscription() -> None:
    error = useapi(402, {"error": "Account has no subscription or subscription expired"})
    assert messages.explain(error, FACTS) == messages.Explained(
        "The bot's useapi account has no subscription; an admin has been told.",
        "The bot's useapi account has no active subscription, so nothing can be sent now. An admin has been told.",
        "useapi answered 402 (Account has no subscription or subscription expired): renew the subscription. "
        "Nothing is retried until then.",
    )


def test_a_job_useapi_forgot_says_how_long_it_keeps_jobs() -> None:
    assert messages.explain(useapi(404, {"error": "Unable to locate job j1"}), FACTS) == messages.Explained(
        "useapi no longer knows the job this was made from (it keeps jobs 31 days).",
        "useapi no longer knows that job (it keeps jobs for 31 days), so its buttons cannot be used.",
    )


def test_moderation_gives_midjourneys_words_to_the_person_who_asked_only() -> None:
    explained = messages.explain(useapi(422, MODERATED_BODY), FACTS)
    assert explained.public == "Midjourney declined this request; the person who asked has the details."
    assert explained.private == ("Midjourney declined this request: Sorry! Our AI moderators feel your prompt "
                                 "might be against our community standards.")


def test_moderation_names_the_refused_word_where_the_backend_says() -> None:
    error = BackendError(ErrorKind.MODERATED, "banned prompt", word="gore")
    assert messages.explain(error, FACTS).private == "Midjourney declined this request: banned prompt (the word `gore`)"


def test_moderation_without_words() -> None:
    assert messages.explain(BackendError(ErrorKind.MODERATED), FACTS).private == (
        "Midjourney declined this request: the prompt was refused")


def test_busy() -> None:
    assert messages.explain(useapi(429, DISCORD_429_BODY), FACTS) == messages.Explained(
        "Midjourney is busy; the job waits and is sent again automatically.",
        "Midjourney is busy; your job waits and will be sent again automatically.",
    )


def test_untrackable() -> None:
    assert messages.explain(useapi(504, {"error": "Job queued", "jobid": "j1"}), FACTS) == messages.Explained(
        "Midjourney queued this job where useapi cannot follow it, so it is marked failed (a result that still "
        "arrives will be posted here).",
        "Midjourney queued this job where useapi cannot track it, so it is marked failed. If the result still "
        "arrives it will be posted here; the bot sends fewer jobs at once for the next 5 minutes.",
    )


def test_needs_human() -> None:
    assert messages.explain(useapi(596, {"error": "Pending mod message"}), FACTS) == messages.Explained(
        "Midjourney is waiting for a human to answer a moderation message on the account; jobs are paused until "
        "an admin clears it.",
        "Midjourney has a pending moderation message for the shared account. Every job is paused until someone "
        "answers it in Discord and an admin runs `/relay reset`; yours is kept and sent after.",
    )


def test_a_server_error_after_the_last_try() -> None:
    assert messages.explain(useapi(503, {"error": "Service Unavailable"}), FACTS, attempts=4) == messages.Explained(
        "useapi kept failing (503); gave up after 4 tries.",
        "useapi kept failing (503) after 4 tries, so the job failed; please try again later.",
        "useapi kept failing (503) after 4 tries: Service Unavailable",
    )


def test_no_connection() -> None:
    explained = messages.explain(answers.error_of(errors.UseapiConnectionError("Connection refused")), FACTS)
    assert explained == messages.Explained(
        "useapi could not be reached; gave up after several tries.",
        "useapi could not be reached after several tries, so the job failed; please try again later.",
        "useapi could not be reached after several tries: Connection refused",
    )


def test_no_answer_in_time() -> None:
    explained = messages.explain(answers.error_of(errors.UseapiTimeout("no answer in 30s")), FACTS, attempts=2)
    assert explained.public == "useapi did not answer in time; gave up after 2 tries."
    assert explained.private == (
        "useapi did not answer in time after 2 tries, so the job failed; please try again later.")


def test_unsupported_says_why() -> None:
    error = BackendError(ErrorKind.UNSUPPORTED, "Vary (Region) needs a mask, which this bot cannot draw yet.")
    text = "Vary (Region) needs a mask, which this bot cannot draw yet."
    assert messages.explain(error, FACTS) == messages.Explained(text, text)
    assert messages.explain(BackendError(ErrorKind.UNSUPPORTED), FACTS).private == "useapi cannot do that."


@pytest.mark.parametrize("kind", [ErrorKind.ALREADY_DONE, ErrorKind.JOB_FAILED, ErrorKind.TIMED_OUT,
                                  ErrorKind.CANCELLED])
def test_a_kind_without_words_of_its_own_keeps_the_detail_for_the_asker(kind: ErrorKind) -> None:
    explained = messages.explain(BackendError(kind, "Midjourney said no"), FACTS)
    assert explained == messages.Explained("useapi answered with an error.",
                                           "useapi answered with an error: Midjourney said no")


def test_a_409_without_the_job_it_made_reads_as_a_sentence() -> None:
    # useapi's 409 without a jobid: submission's _already_done fails the job with explain()'s words on its card.
    explained = messages.explain(useapi(409, {"error": "Button U1 already executed"}), FACTS)
    assert "useapi" in explained.public and "409" in explained.public
    assert "answered 409 an error" not in explained.public
    assert "answered 409 an error" not in explained.private


def test_every_kind_has_words_for_the_card_and_for_the_asker() -> None:
    for kind in ErrorKind:
        explained = messages.explain(BackendError(kind, "detail", status=500), FACTS)
        assert explained.public.strip() and explained.private.strip(), kind


# -- the words for a backend whose label starts with "the " ----------------------------------------------------

_LOWERCASE_START = re.compile(r"(?:^|[.!?]\s+)the mj-proxy")


def _starts_well(text: str) -> bool:
    return _LOWERCASE_START.search(text) is None


def test_label_start() -> None:
    assert MJ_PROXY.label_start == "The mj-proxy"
    assert FACTS.label_start == "useapi"  # a name, not a noun: never capitalised


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_member_sentences_start_with_a_capital(kind: ErrorKind) -> None:
    for status in (None, 500):
        explained = messages.explain(BackendError(kind, status=status), MJ_PROXY)
        assert _starts_well(explained.public), explained.public
        assert _starts_well(explained.private), explained.private


def test_no_words_name_useapi_when_another_backend_is_in_use() -> None:
    for kind in ErrorKind:
        explained = messages.explain(BackendError(kind, status=500), MJ_PROXY, attempts=2)
        for text in (explained.public, explained.private, explained.admin or "",
                     messages.admin_alert(BackendError(kind, status=500), MJ_PROXY)):
            assert "useapi" not in text.lower(), text


def test_the_mj_proxys_words_for_a_missing_job_and_an_outage() -> None:
    assert messages.explain(BackendError(ErrorKind.NOT_FOUND), MJ_PROXY).public == (
        "The mj-proxy no longer knows the job this was made from.")  # no retention: no "(it keeps jobs ...)"
    assert messages.explain(BackendError(ErrorKind.UNAVAILABLE), MJ_PROXY, attempts=3).public == (
        "The mj-proxy could not be reached; gave up after 3 tries.")
    assert messages.explain(BackendError(ErrorKind.BAD_REQUEST, button="U9"), MJ_PROXY).private == (
        "The mj-proxy does not support the button `U9` (yet).")
    assert messages.retry_note(MJ_PROXY, 1, 2.0) == "The mj-proxy is unreachable (try 1): trying again in 2.0s."


@pytest.mark.parametrize("kind", [ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.UNAUTHORISED,
                                  ErrorKind.NO_SUBSCRIPTION])
def test_admin_details_start_with_a_capital(kind: ErrorKind) -> None:
    admin = messages.explain(BackendError(kind, "detail", status=401), MJ_PROXY).admin
    assert admin is not None
    assert _starts_well(admin), admin


@pytest.mark.parametrize("kind", [ErrorKind.NEEDS_HUMAN, ErrorKind.BAD_REQUEST])
def test_admin_alerts_start_with_a_capital(kind: ErrorKind) -> None:
    alert = messages.admin_alert(BackendError(kind, "detail", status=400), MJ_PROXY)
    assert _starts_well(alert), alert


# -- admin_alert ---------------------------------------------------------------------------------------------


def test_the_moderation_alert_tells_admins_what_to_do() -> None:
    alert = messages.admin_alert(useapi(596, {"error": "Pending mod message", "channel": "123"}), FACTS)
    assert alert == (
        "Midjourney has a pending moderation message (or CAPTCHA) on the useapi account, so every job is paused "
        "(useapi answered 596). Log into the Midjourney Discord account, answer the message, then run "
        "`/relay reset`. Submissions also resume by themselves once useapi shows the account clear.")


def test_the_moderation_alert_without_a_status_leaves_it_out() -> None:
    alert = messages.admin_alert(BackendError(ErrorKind.NEEDS_HUMAN, "seen by a health check"), FACTS)
    assert "answered" not in alert
    assert alert.startswith("Midjourney has a pending moderation message (or CAPTCHA) on the useapi account, so "
                            "every job is paused. Log into")


def test_other_alerts_are_the_admin_details() -> None:
    assert messages.admin_alert(useapi(401, {"error": "Unauthorized"}), FACTS) == (
        "useapi answered 401 (Unauthorized): the API token in USEAPI_TOKEN was refused. Nothing is retried until "
        "it is fixed.")


# -- the working notes and the one-line answers ----------------------------------------------------------------


@pytest.mark.parametrize("problem", ["The prompt is empty.", "  The prompt is empty.\n"])
def test_nothing_sent_leads_with_it(problem: str) -> None:
    assert messages.nothing_sent(problem) == "Nothing was sent. The prompt is empty."


@pytest.mark.parametrize("problem", [
    "Job #3 is running. Nothing was sent.",
    messages.DATABASE_RESET,  # "...; nothing was sent."
])
def test_nothing_sent_is_not_said_again(problem: str) -> None:
    assert messages.nothing_sent(problem) == problem


def test_nothing_sent_is_not_said_again_when_the_problem_opens_with_it() -> None:
    refusal = Usage(Allowance(queue_limit=3, daily_quota=0), 3, 0, 86_400.0).refusal()
    assert refusal is not None
    assert messages.nothing_sent(refusal).count("Nothing was sent") == 1


def test_duplicate_points_at_the_existing_result() -> None:
    assert messages.duplicate("U1", 12, "https://discord.com/channels/1/2/3") == (
        "U1 of #12 was already made, so nothing new was sent. It is shown here: https://discord.com/channels/1/2/3")
    assert messages.duplicate("U2", 12, None) == (
        "U2 of #12 was already made, so nothing new was sent. It is shown here.")
    assert messages.duplicate(None, None, None) == (
        "That button was already made, so nothing new was sent. It is shown here.")


def test_busy_note_tells_a_rate_limit_from_full_slots() -> None:
    assert messages.busy_note(useapi(429, DISCORD_429_BODY), FACTS, 10.0) == (
        "Discord is rate-limiting Midjourney: waiting, sent again in 10s.")
    full = useapi(429, {"error": "Maximum of 3 jobs executing in parallel supported", "executingJobs": ["a"]})
    assert messages.busy_note(full, FACTS, 7.5) == (
        "Midjourney is busy (useapi's queue is full): waiting, sent again in 7.5s.")


def test_retry_note() -> None:
    assert messages.retry_note(FACTS, 2, 4.0) == "useapi is unreachable (try 2): trying again in 4.0s."
    assert messages.retry_note(FACTS, 5, 30.4) == "useapi is unreachable (try 5): trying again in 30s."


def test_outage_note_names_the_backend() -> None:
    assert messages.outage_note(FACTS) == (
        "Waiting for useapi, which is not answering right now: the job keeps its place and carries on by itself "
        "once useapi is back.")


def test_timed_out_in_minutes() -> None:
    assert messages.timed_out(35) == ("No result from Midjourney after 35 minutes; the job is marked failed (a "
                                      "result that still arrives will be posted).")
    assert messages.timed_out(1.5).startswith("No result from Midjourney after 1.5 minutes;")


def test_timed_out_under_a_minute_in_seconds() -> None:
    assert messages.timed_out(0.5).startswith("No result from Midjourney after 30 seconds;")
    assert messages.timed_out(0.999).startswith("No result from Midjourney after 59.9 seconds;")


def test_timed_out_after_one_minute() -> None:
    assert messages.timed_out(1).startswith("No result from Midjourney after 1 minute;")


def test_reference_too_long() -> None:
    assert messages.reference_too_long(FACTS, 1100, url=True) == (
        "The callback address (PUBLIC_URL plus the bot's path) is 1100 characters; useapi accepts at most 1024. An "
        "admin must shorten PUBLIC_URL.")
    assert messages.reference_too_long(FACTS, 1100, url=False) == (
        "The job reference is longer than useapi's 1024 characters.")


@pytest.mark.parametrize(("reply", "state"), [
    ("Remix mode turned on! You can disable it by running `/prefer remix` again.", True),
    ("Remix mode turned off! You can enable it by running `/prefer remix` again.", False),
    ("**Remix mode is ON**", True),
    ("Remix mode has been turned off.", False),
    ("", None),
    (None, None),
    ("Your settings were updated.", None),  # unreadable: the bot must not guess
])
def test_account_remix_state(reply: str | None, state: bool | None) -> None:
    assert messages.account_remix_state(reply) is state


def test_jump_url() -> None:
    assert messages.jump_url(1, 2, 3) == "https://discord.com/channels/1/2/3"
