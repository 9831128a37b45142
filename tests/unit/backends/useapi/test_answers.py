"""useapi's answers in the relay's words: each error class as its kind, each job as a `JobUpdate`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.backends.base import BackendError, BackendStatus, Button, ErrorKind, Media
from bot.backends.useapi import answers, errors
from bot.backends.useapi.facts import GRID_BUTTONS
from bot.backends.useapi.models import Job
from bot.backends.useapi.simulator.answers import DISCORD_429_BODY, MODERATED_BODY


def error(status: int, body: dict[str, Any]) -> BackendError:
    return answers.error_of(errors.error_for(status, body))


# -- error_of ------------------------------------------------------------------------------------------------


def test_409_names_the_job_the_button_already_made() -> None:
    found = error(409, {"error": "Button U1 already executed by job j7", "button": "U1", "jobid": "j7", "code": 409})
    assert (found.kind, found.status, found.job_id, found.button) == (ErrorKind.ALREADY_DONE, 409, "j7", "U1")


def test_409_without_a_jobid_has_none() -> None:
    found = error(409, {"error": "Button U1 already executed"})
    assert found.kind is ErrorKind.ALREADY_DONE
    assert found.job_id is None


def test_429_from_discord_is_a_rate_limit_with_discords_retry_after() -> None:
    found = error(429, DISCORD_429_BODY)
    assert (found.kind, found.rate_limited, found.retry_after) == (ErrorKind.BUSY, True, 10.0)


@pytest.mark.parametrize("body", [
    {"error": "Maximum of 3 jobs executing in parallel supported", "executingJobs": ["j1", "j2", "j3"]},
    {"error": "Maximum of 3 jobs executing in parallel supported"},
    {"error": "Too many", "executingJobs": []},
])
def test_429_with_useapis_queue_full_is_full_slots(body: dict[str, Any]) -> None:
    found = error(429, body)
    assert (found.kind, found.rate_limited, found.retry_after) == (ErrorKind.BUSY, False, None)


@pytest.mark.parametrize(("details", "retry_after"), [
    ('{"retry_after": 2.5}', 2.5),
    ({"retry_after": "7"}, 7.0),  # already parsed, as a string
    ('{"retry_after": true}', None),  # a bool is not a number of seconds
    ('{"retry_after": "soon"}', None),
    ("not json", None),
    ("[1, 2]", None),
])
def test_429_retry_after_is_read_only_where_it_is_a_number(details: Any, retry_after: float | None) -> None:
    found = error(429, {"error": "Discord /interactions failed with HTTP status 429", "errorDetails": details})
    assert found.rate_limited
    assert found.retry_after == retry_after


def test_504_job_queued_names_the_job_useapi_marked_failed() -> None:
    found = error(504, {"error": "Job queued", "jobid": "j9", "status": "failed", "code": 504})
    assert (found.kind, found.status, found.job_id) == (ErrorKind.UNTRACKABLE, 504, "j9")


def test_a_gateways_own_504_is_an_outage_not_a_queued_job() -> None:
    found = error(504, {"error": "Gateway Timeout"})
    assert (found.kind, found.status, found.job_id) == (ErrorKind.UNAVAILABLE, 504, None)


def test_596_names_the_account_that_waits_for_a_human() -> None:
    found = error(596, {"error": "Pending mod message", "errorDetails": "Please acknowledge it.", "channel": "123"})
    assert (found.kind, found.account, found.detail) == (ErrorKind.NEEDS_HUMAN, "123", "Please acknowledge it.")


def test_596_without_details_keeps_the_error() -> None:
    found = error(596, {"error": "Your Discord account has received a pending moderation message"})
    assert found.kind is ErrorKind.NEEDS_HUMAN
    assert found.account is None
    assert found.detail == "Your Discord account has received a pending moderation message"


def test_422_is_moderated_with_midjourneys_words() -> None:
    found = error(422, MODERATED_BODY)
    assert found.kind is ErrorKind.MODERATED
    assert found.detail == MODERATED_BODY["errorDetails"]


@pytest.mark.parametrize(("status", "kind"), [
    (401, ErrorKind.UNAUTHORISED),
    (402, ErrorKind.NO_SUBSCRIPTION),
    (404, ErrorKind.NOT_FOUND),
    (500, ErrorKind.UNAVAILABLE),
    (502, ErrorKind.UNAVAILABLE),
    (418, ErrorKind.UNAVAILABLE),  # a status the contract does not describe: retried like an outage
])
def test_other_statuses(status: int, kind: ErrorKind) -> None:
    found = error(status, {"error": "words"})
    assert (found.kind, found.status, found.detail) == (kind, status, "words")


def test_a_timeout_is_not_a_connection_error() -> None:
    # A timed-out call may still have been accepted: the relay looks for it before trying again.
    found = answers.error_of(errors.UseapiTimeout("no answer within 30s"))
    assert (found.kind, found.status, found.detail) == (ErrorKind.TIMEOUT, None, "no answer within 30s")


def test_a_connection_error_has_no_status() -> None:
    found = answers.error_of(errors.UseapiConnectionError("Connection refused"))
    assert (found.kind, found.status) == (ErrorKind.UNAVAILABLE, None)


def test_400_a_button_useapi_does_not_support() -> None:
    found = error(400, {"error": "button Vary (Region) not supported"})
    assert (found.kind, found.button, found.offered) == (ErrorKind.BAD_REQUEST, "Vary (Region)", None)


def test_400_a_button_the_job_does_not_offer() -> None:
    found = error(400, {"error": 'button U5 not found in job abc:1 buttons ["U1","U2","V1"]'})
    assert (found.button, found.offered) == ("U5", '["U1","U2","V1"]')


@pytest.mark.parametrize(("text", "field", "problem"), [
    ("prompt is missing", "prompt", "is missing"),
    ("jobid is missing", "jobid", "is missing"),
    ("replyUrl is too long", "replyUrl", "is too long"),
    ("maxJobs must be an integer between 1 and 15", "maxJobs", "must be an integer between 1 and 15"),
])
def test_400_a_field(text: str, field: str, problem: str) -> None:
    found = error(400, {"error": text})
    assert (found.kind, found.field_name, found.problem, found.button) == (ErrorKind.BAD_REQUEST, field, problem, None)


def test_400_anything_else_keeps_the_text_only() -> None:
    found = error(400, {"error": "Something went sideways"})
    assert (found.kind, found.detail, found.button, found.field_name) == (
        ErrorKind.BAD_REQUEST, "Something went sideways", None, None)


# -- update_of -----------------------------------------------------------------------------------------------


def job(**body: Any) -> Job:
    return Job.model_validate({"jobid": "j1", **body})


@pytest.mark.parametrize(("status", "expected"), [
    ("created", BackendStatus.RUNNING),
    ("started", BackendStatus.RUNNING),
    ("progress", BackendStatus.RUNNING),
    (None, BackendStatus.RUNNING),
    ("something new", BackendStatus.RUNNING),  # useapi adds statuses without notice: not final by accident
    ("completed", BackendStatus.DONE),
    ("failed", BackendStatus.FAILED),
    ("moderated", BackendStatus.MODERATED),
    ("cancelled", BackendStatus.CANCELLED),
])
def test_status(status: str | None, expected: BackendStatus) -> None:
    assert answers.update_of(job(status=status)).status is expected


@pytest.mark.parametrize(("content", "progress"), [
    ("**a fox** - <@1308> (42%) (fast)", 42),
    ("**a fox** - (0%)", 0),
    ("**a fox** - (150%)", 100),  # never more than a full bar
    ("**a fox** - <@1308> (fast)", None),
    (None, None),
])
def test_progress(content: str | None, progress: int | None) -> None:
    assert answers.update_of(job(status="progress", content=content)).progress == progress


ATTACHMENT = {"url": "https://cdn/a.png", "content_type": "image/png", "size": 1234, "width": 1024, "height": 1024,
              "filename": "a.png"}
EMBED = {"image": {"url": "https://cdn/embed.png", "width": 512, "height": 256}}


def test_a_done_job_has_its_attachments_its_buttons_and_no_preview() -> None:
    update = answers.update_of(job(status="completed", attachments=[ATTACHMENT], embeds=[EMBED],
                                   buttons=GRID_BUTTONS))
    assert update.media == (Media(url="https://cdn/a.png", content_type="image/png", size=1234, width=1024,
                                  height=1024, filename="a.png"),)
    assert update.buttons == tuple(Button(name, name) for name in GRID_BUTTONS)
    assert update.preview_url is None
    assert update.is_final


def test_without_attachments_the_embeds_image_is_the_result() -> None:
    update = answers.update_of(job(status="completed", attachments=[{"filename": "no-url.png"}],
                                   embeds=[EMBED, {"image": {"url": "https://cdn/second.png"}}]))
    assert update.media == (Media(url="https://cdn/embed.png", width=512, height=256),)


def test_an_embed_without_an_image_gives_no_media() -> None:
    assert answers.update_of(job(status="completed", embeds=[{"image": "not a dict"}, EMBED])).media == ()


def test_a_running_jobs_attachment_is_its_preview_not_its_result() -> None:
    update = answers.update_of(job(status="progress", attachments=[ATTACHMENT], buttons=["U1"]))
    assert update.preview_url == "https://cdn/a.png"
    assert update.media == ()
    assert update.buttons == ()  # nothing to click before it is done


@pytest.mark.parametrize("status", ["failed", "moderated", "cancelled"])
def test_an_ended_job_has_no_preview_media_or_buttons(status: str) -> None:
    update = answers.update_of(job(status=status, attachments=[ATTACHMENT], buttons=["U1"]))
    assert (update.preview_url, update.media, update.buttons) == (None, (), ())


def test_a_failed_jobs_error_prefers_midjourneys_details() -> None:
    assert answers.update_of(job(status="moderated", error="Action needed", errorDetails="Sorry!")).error == "Sorry!"
    assert answers.update_of(job(status="failed", error="Job failed")).error == "Job failed"
    assert answers.update_of(job(status="cancelled")).error == "Midjourney reported the job cancelled."
    assert answers.update_of(job(status="completed", error="stale words")).error is None


def test_done_buttons_are_the_one_shot_buttons_already_pressed() -> None:
    children = [{"button": "U1", "jobid": "c1"}, {"button": "V2", "jobid": "c2"}, {"button": "U3", "jobid": "c3"},
                {"jobid": "c4"}]
    assert answers.update_of(job(status="completed", children=children)).done_buttons == ("U1", "U3")


def test_reference_callback_and_prompt_are_echoed() -> None:
    update = answers.update_of(job(status="started", replyRef="0123456789-12", replyUrl="https://r/cb",
                                   prompt="a fox"))
    assert (update.job_id, update.ref, update.callback_url, update.prompt) == (
        "j1", "0123456789-12", "https://r/cb", "a fox")


@pytest.mark.parametrize(("created", "expected"), [
    ("2023-09-09T20:19:57.073Z", datetime(2023, 9, 9, 20, 19, 57, 73000, tzinfo=UTC).timestamp()),
    ("2023-09-09T20:19:57+02:00", datetime(2023, 9, 9, 18, 19, 57, tzinfo=UTC).timestamp()),
    ("yesterday", None),
    ("", None),
    (None, None),
])
def test_created_at(created: str | None, expected: float | None) -> None:
    assert answers.update_of(job(created=created)).created_at == expected


def test_raw_is_the_given_body_else_the_jobs_own() -> None:
    assert answers.update_of(job(status="started"), {"masked": True}).raw == {"masked": True}
    own = answers.update_of(job(status="started", somethingNew=1)).raw
    assert own["jobid"] == "j1"
    assert own["somethingNew"] == 1  # a field useapi added is kept for people debugging


# -- describe, seed and the settings replies ------------------------------------------------------------------

DESCRIBED = ("1️⃣ a fox in tall grass, golden hour --ar 3:2\n\n2️⃣ a red fox, watercolour --ar 3:2\n\n"
             "3️⃣ fox, meadow, morning mist --ar 3:2\n\n4️⃣ a curious fox looking back, film photo --ar 3:2")
# A finished describe as useapi returns it: Midjourney's embed (its text, the image described), no content.
DESCRIBE_DONE: dict[str, Any] = {"verb": "describe", "status": "completed", "describeUrl": "https://r/fox.png",
                                 "content": "", "embeds": [{"type": "rich", "description": DESCRIBED,
                                                            "image": {"url": "https://r/fox.png"}}]}


def test_a_finished_describe_gives_its_four_prompts() -> None:
    update = answers.update_of(job(**DESCRIBE_DONE))
    assert update.prompts == ("a fox in tall grass, golden hour --ar 3:2", "a red fox, watercolour --ar 3:2",
                              "fox, meadow, morning mist --ar 3:2", "a curious fox looking back, film photo --ar 3:2")
    assert update.status is BackendStatus.DONE and update.buttons == ()


@pytest.mark.parametrize("body", [
    {**DESCRIBE_DONE, "status": "started", "embeds": []},
    {**DESCRIBE_DONE, "status": "failed"},
    {**DESCRIBE_DONE, "verb": "imagine"},  # only a describe's text is prompts
    {**DESCRIBE_DONE, "embeds": [{"type": "rich"}]},
])
def test_anything_else_has_no_prompts(body: dict[str, Any]) -> None:
    assert answers.update_of(job(**body)).prompts == ()


def test_a_describe_in_the_content_is_read_too() -> None:
    assert len(answers.update_of(job(**{**DESCRIBE_DONE, "embeds": [], "content": DESCRIBED})).prompts) == 4


@pytest.mark.parametrize("body", [
    {"content": "**a fox** - <@1308>\n**Job ID**: 6f6c0b6e\n**seed** 1783912300"},
    {"content": "", "embeds": [{"description": "**Job ID**: 6f6c0b6e\n**seed** 1783912300"}]},
])
def test_a_finished_seed_job_names_its_seed(body: dict[str, Any]) -> None:
    assert answers.seed_of(job(verb="seed_async", status="completed", **body)) == "1783912300"


def test_a_seed_job_that_failed_or_names_none_is_an_error() -> None:
    failed = job(verb="seed_async", status="failed", error="Job failed", errorDetails="no DM from Midjourney")
    with pytest.raises(BackendError) as raised:
        answers.seed_of(failed)
    assert raised.value.kind is ErrorKind.JOB_FAILED and "no DM from Midjourney" in raised.value.detail
    with pytest.raises(BackendError) as raised:
        answers.seed_of(job(verb="seed_async", status="completed", content="Something else entirely"))
    assert raised.value.kind is ErrorKind.UNAVAILABLE and "Something else entirely" in raised.value.detail


@pytest.mark.parametrize(("body", "reply"), [
    ({"content": "Relax mode turned on!", "embeds": [{"description": "other"}]}, "Relax mode turned on!"),
    ({"content": "", "embeds": [{"type": "rich"}, {"description": "Fast mode turned on!"}]}, "Fast mode turned on!"),
    ({}, ""),
])
def test_a_settings_reply_is_the_content_else_an_embeds(body: dict[str, Any], reply: str) -> None:
    assert answers.reply_of(job(verb="fast", status="completed", **body)) == reply
