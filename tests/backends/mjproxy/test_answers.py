"""answers.py against recorded-shape fixtures: one JSON per task status and per result code, written after
trueai-org/midjourney-proxy's DTOs at ed32197 (TaskInfo, SubmitResultVO, CustomComponentModel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.backends.base import BackendError, BackendStatus, Button, ErrorKind
from bot.backends.mjproxy import errors
from bot.backends.mjproxy.answers import error_of, refusal, seed_error, seed_of, status_of, submitted, update_of
from bot.backends.mjproxy.facts import MODERATION_PHRASES, UPSCALE_BUTTONS, is_moderation
from bot.backends.mjproxy.models import SubmitResult, Task, parse_progress

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def task(name: str) -> Task:
    return Task.model_validate(fixture(name))


def result(name: str) -> SubmitResult:
    return SubmitResult.model_validate(fixture(name))


@pytest.mark.parametrize(("name", "status"), [
    ("task_NOT_START", BackendStatus.QUEUED),
    ("task_SUBMITTED", BackendStatus.RUNNING),
    ("task_IN_PROGRESS", BackendStatus.RUNNING),
    ("task_SUCCESS", BackendStatus.DONE),
    ("task_SUCCESS_upscale_numeric_ids", BackendStatus.DONE),
    ("task_SUCCESS_video", BackendStatus.DONE),
    ("task_FAILURE", BackendStatus.FAILED),
    ("task_FAILURE_moderated", BackendStatus.MODERATED),
    ("task_FAILURE_banned_word", BackendStatus.MODERATED),
    ("task_FAILURE_cancelled", BackendStatus.CANCELLED),
    ("task_CANCEL", BackendStatus.CANCELLED),
    ("task_MODAL", BackendStatus.AWAITING_PROMPT),
])
def test_every_task_status_maps(name: str, status: BackendStatus) -> None:
    update = update_of(task(name))
    assert update.status is status
    assert update.is_final == (status in (BackendStatus.DONE, BackendStatus.FAILED, BackendStatus.MODERATED,
                                          BackendStatus.CANCELLED))


def test_a_queued_and_a_submitted_task_carry_their_reference_and_hook() -> None:
    for name in ("task_NOT_START", "task_SUBMITTED"):
        update = update_of(task(name))
        assert update.job_id == "1722480000123456"
        assert update.ref == "0123456789-7"
        assert update.callback_url == "https://relay.example.org/callbacks/mjproxy/0123456789-7"
        assert update.prompt == "a lighthouse at dusk"
        assert update.created_at == pytest.approx(1722480000.123)
        assert not update.media and not update.buttons and update.error is None
    assert update_of(task("task_SUBMITTED")).progress == 0
    assert update_of(task("task_NOT_START")).progress is None


def test_a_running_task_shows_its_progress_and_preview() -> None:
    update = update_of(task("task_IN_PROGRESS"))
    assert update.progress == 42
    assert update.preview_url is not None and "lighthouse_progress.webp" in update.preview_url
    assert not update.media


def test_a_finished_grid_has_its_image_and_buttons_by_label_or_emoji() -> None:
    update = update_of(task("task_SUCCESS"))
    assert [button.name for button in update.buttons] == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert update.buttons[0] == Button("U1", "MJ::JOB::upsample::1::3dbbd469-36af-4a0f-8f02-df6c579e7011")
    assert update.buttons[4].ref == "MJ::JOB::reroll::0::3dbbd469-36af-4a0f-8f02-df6c579e7011::SOLO"
    (image,) = update.media
    assert image.kind == "image" and image.content_type == "image/png"
    assert (image.width, image.height, image.size) == (2048, 2048, 7340032)
    assert update.preview_url is None and update.progress == 100


def test_an_upscale_with_numeric_ids_keeps_strings_and_every_button() -> None:
    parsed = task("task_SUCCESS_upscale_numeric_ids")
    assert parsed.id == "1722480100456789" and parsed.parentId == "1722480000123456"
    update = update_of(parsed)
    assert update.job_id == "1722480100456789"
    assert [button.name for button in update.buttons] == list(UPSCALE_BUTTONS)
    assert update.callback_url is None  # properties.notifyHook is null: the proxy's global hook applies


def test_a_video_task_gives_the_video_and_its_still() -> None:
    video, still = update_of(task("task_SUCCESS_video")).media
    assert video.kind == "video" and video.url.endswith("/0.mp4") and video.size == 4194304
    assert still.kind == "image" and still.url.endswith("/0.webp") and still.size is None


@pytest.mark.parametrize(("name", "error"), [
    ("task_FAILURE", "执行超时 10 分钟"),
    ("task_FAILURE_moderated", "Banned prompt detected: Sorry! Our AI moderators feel your prompt might be "
                               "against our community standards."),
    ("task_FAILURE_banned_word", "可能包含敏感词"),
    ("task_FAILURE_cancelled", "The task was cancelled at the mj-proxy."),
])
def test_a_failed_task_says_why(name: str, error: str) -> None:
    assert update_of(task(name)).error == error


def test_the_body_is_kept_raw_and_extra_fields_survive() -> None:
    body = fixture("task_SUCCESS")
    update = update_of(Task.model_validate(body))
    assert update.raw["displays"]["status"] == "SUCCESS" and update.raw["jobId"] == body["jobId"]


def test_an_unknown_status_is_running_not_final() -> None:
    assert status_of(Task.model_validate({"id": "1", "status": "RETRYING"})) is BackendStatus.RUNNING
    assert status_of(Task.model_validate({"id": "1", "status": None})) is BackendStatus.RUNNING


# ---- result codes


def test_code_1_is_a_running_task_under_our_reference() -> None:
    for name in ("result_1", "result_1_numeric"):
        update = submitted(result(name), ref="r-1", callback_url="http://hook", prompt="a cat")
        assert (update.job_id, update.status, update.ref, update.callback_url, update.prompt) == (
            "1722480000123456", BackendStatus.RUNNING, "r-1", "http://hook", "a cat")
        assert update.queue_position is None


def test_code_22_is_queued_with_its_place() -> None:
    update = submitted(result("result_22"), ref="r-1", callback_url=None, prompt="a cat")
    assert update.status is BackendStatus.QUEUED and update.queue_position == 2 and not update.is_final


def test_code_21_waiting_for_its_modal_is_awaiting_prompt() -> None:
    update = submitted(result("result_21_modal"), ref="r-2", callback_url=None, prompt="zoom --zoom 1.5")
    assert (update.job_id, update.status, update.ref) == ("1722480300111222", BackendStatus.AWAITING_PROMPT, "r-2")
    assert update.prompt == "zoom --zoom 1.5" and not update.is_final
    unasked = submitted(result("result_21_modal"), ref="r-2", callback_url=None, prompt=None)
    assert unasked.prompt == "a lighthouse at dusk --v 7.0"  # what the modal starts from


def test_code_21_already_exists_names_the_upscale_made() -> None:
    with pytest.raises(BackendError) as raised:
        submitted(result("result_21_existed"), ref="r-3", callback_url=None, prompt=None, button="U1")
    assert raised.value.kind is ErrorKind.ALREADY_DONE
    assert (raised.value.job_id, raised.value.button, raised.value.status) == ("1722480100456789", "U1", 21)


@pytest.mark.parametrize(("name", "kind"), [
    ("result_23", ErrorKind.BUSY),
    ("result_9_queue_full", ErrorKind.BUSY),
    ("result_24", ErrorKind.MODERATED),
    ("result_3", ErrorKind.NOT_FOUND),
    ("result_3_no_account", ErrorKind.UNAVAILABLE),
    ("result_4", ErrorKind.BAD_REQUEST),
    ("result_4_state", ErrorKind.BAD_REQUEST),
    ("result_4_remix_off", ErrorKind.BAD_REQUEST),
    ("result_9", ErrorKind.JOB_FAILED),
    ("result_logic_failure", ErrorKind.BAD_REQUEST),
])
def test_every_refusal_code_maps_and_keeps_the_proxy_words_as_detail(name: str, kind: ErrorKind) -> None:
    body = fixture(name)
    with pytest.raises(BackendError) as raised:
        submitted(SubmitResult.model_validate(body), ref="r", callback_url=None, prompt="p")
    assert raised.value.kind is kind
    assert raised.value.detail == (body.get("description") or body.get("message"))
    assert raised.value.status == body["code"]


def test_refusals_carry_what_their_kind_needs() -> None:
    assert refusal(result("result_24")).word == "forbidden"
    state = refusal(result("result_4_state"))
    assert (state.field_name, state.problem) == ("state", "is too long (at most 255 characters)")
    remix = refusal(result("result_4_remix_off"))
    assert remix.field_name == "enableRemix" and remix.problem is not None and "admin" in remix.problem
    unknown = refusal(SubmitResult(code=4, description="未知的 Action 类型"), "Make Square")
    assert unknown.button == "Make Square"
    assert refusal(SubmitResult(code=4, description="并发数已达上限")).kind is ErrorKind.BUSY


def test_an_accepted_code_without_an_id_is_looked_for_not_resent() -> None:
    with pytest.raises(BackendError) as raised:
        submitted(SubmitResult(code=1, description="提交成功"), ref="r", callback_url=None, prompt="p")
    assert raised.value.kind is ErrorKind.TIMEOUT


def test_an_object_that_is_no_submit_result_is_an_outage() -> None:
    assert refusal(SubmitResult.model_validate({"unexpected": True})).kind is ErrorKind.UNAVAILABLE


@pytest.mark.parametrize(("exc", "kind", "status"), [
    (errors.Unauthorized(401, "Authorization header missing."), ErrorKind.UNAUTHORISED, 401),
    (errors.Unauthorized(403, "账号不可用"), ErrorKind.UNAUTHORISED, 403),
    (errors.NotFound(404, '{"code": 3, "description": "关联任务不存在或已失效"}'), ErrorKind.NOT_FOUND, 404),
    (errors.BadRequest(400, "演示模式，禁止操作"), ErrorKind.BAD_REQUEST, 400),
    (errors.RateLimited(429, ""), ErrorKind.BUSY, 429),
    (errors.ServerError(502, "<html><title>502 Bad Gateway</title></html>"), ErrorKind.UNAVAILABLE, 502),
    (errors.MjproxyConnectionError("connection refused"), ErrorKind.UNAVAILABLE, None),
    (errors.MjproxyTimeout("no answer within 5 s"), ErrorKind.TIMEOUT, None),
])
def test_http_failures_map(exc: errors.MjproxyError, kind: ErrorKind, status: int | None) -> None:
    mapped = error_of(exc)
    assert (mapped.kind, mapped.status) == (kind, status)
    assert mapped.rate_limited == (kind is ErrorKind.BUSY)


def test_error_words_are_read_from_json_text_and_html() -> None:
    missing = errors.NotFound(404, '{"code": 3, "description": "关联任务不存在或已失效"}')
    assert (missing.words, missing.code) == ("关联任务不存在或已失效", 3)
    assert errors.ServerError(503, "<html><head><title>503 Service Unavailable</title></head></html>").words == \
        "503 Service Unavailable"
    assert errors.RateLimited(429, "").words == "Too Many Requests"


# ---- the small parsers


@pytest.mark.parametrize(("text", "percent"), [("0%", 0), ("42%", 42), ("100%", 100), ("57.5%", 57), ("7", 7),
                                               ("", None), (None, None), ("done", None), ("250%", 100)])
def test_progress_is_read_from_nn_percent(text: str | None, percent: int | None) -> None:
    assert parse_progress(text) == percent


@given(st.integers(min_value=0, max_value=100))
def test_any_percentage_round_trips(percent: int) -> None:
    assert Task.model_validate({"id": 1, "status": "IN_PROGRESS", "progress": f"{percent}%"}).percent == percent


def test_the_moderation_phrases_are_found_without_case() -> None:
    for phrase in MODERATION_PHRASES:
        assert is_moderation(f"x {phrase.upper()} y")
    assert not is_moderation("执行超时 10 分钟") and not is_moderation(None)


def test_task_ids_as_numbers_become_strings_and_booleans_are_refused() -> None:
    assert Task.model_validate({"id": 1722480000123456}).id == "1722480000123456"
    with pytest.raises(ValueError, match="id"):
        Task.model_validate({"id": True})
    assert SubmitResult.model_validate({"code": 1, "result": ["1", 2]}).result == "1,2"


# ---- describe and the seed


def test_a_finished_describe_gives_midjourneys_four_prompts() -> None:
    update = update_of(task("task_SUCCESS_describe"))
    assert update.status is BackendStatus.DONE and update.prompts == (
        "a lighthouse on a rocky shore at dusk, soft watercolour, muted teal and amber --ar 3:2",
        "an old lighthouse under a stormy sky, dramatic light, 35mm photograph --ar 3:2",
        "lighthouse, seagulls, evening, oil painting by the sea --ar 3:2",
        "a lonely tower of light over dark waves, cinematic, moody --ar 3:2",
    )
    # trueai's own describe buttons (one per prompt, and a retry), by emoji: passed on like any task's.
    assert [button.name for button in update.buttons] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "🔄"]


def test_a_describe_without_final_prompt_falls_back_to_its_description() -> None:
    body = fixture("task_SUCCESS_describe")
    body["properties"]["finalPrompt"] = None
    assert len(update_of(Task.model_validate(body)).prompts) == 4


@pytest.mark.parametrize("change", [{"status": "IN_PROGRESS"}, {"status": "FAILURE"}, {"action": "IMAGINE"}])
def test_only_a_finished_describe_has_prompts(change: dict[str, Any]) -> None:
    assert update_of(Task.model_validate({**fixture("task_SUCCESS_describe"), **change})).prompts == ()
    assert update_of(task("task_SUCCESS")).prompts == ()


def test_a_seed_is_the_result_of_code_1() -> None:
    assert seed_of(result("result_1_seed")) == "1783912300"
    assert seed_of(SubmitResult.model_validate({"code": 1, "result": 42})) == "42"  # a number, as gateways send


@pytest.mark.parametrize(("body", "kind"), [
    (fixture("result_3_no_seed"), ErrorKind.UNSUPPORTED),  # the proxy got no seed from Midjourney
    (fixture("result_9_seed_error"), ErrorKind.JOB_FAILED),  # its seedError (words made up for this fixture)
    (fixture("result_3_no_account"), ErrorKind.UNAVAILABLE),
    ({"code": 1, "description": "成功", "result": "not-a-seed"}, ErrorKind.UNAVAILABLE),
    ({"code": 1, "description": "成功", "result": None}, ErrorKind.UNAVAILABLE),
])
def test_any_other_seed_answer_is_its_kind(body: dict[str, Any], kind: ErrorKind) -> None:
    with pytest.raises(BackendError) as raised:
        seed_of(SubmitResult.model_validate(body))
    assert raised.value.kind is kind


def test_the_seed_of_an_unfinished_task_is_a_bad_request_naming_the_task() -> None:
    mapped = seed_error(errors.BadRequest(400, '{"code": 4, "description": "关联任务状态错误", "result": null}'))
    assert (mapped.kind, mapped.field_name, mapped.status) == (ErrorKind.BAD_REQUEST, "taskId", 400)
    assert mapped.problem is not None and "finished" in mapped.problem
    missing = seed_error(errors.NotFound(404, '{"code": 3, "description": "关联任务不存在或已失效"}'))
    assert missing.kind is ErrorKind.NOT_FOUND
