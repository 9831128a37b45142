"""mj-proxy's answers in the relay's vocabulary: tasks as `JobUpdate`s, result codes and errors as `BackendError`s.

Pure functions, one direction: everything mj-proxy-shaped stops here. The proxy's `description` (often Chinese)
is kept as a detail for logs and admins; the relay words every kind itself.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any

from bot.backends.base import BackendError, BackendStatus, Button, ErrorKind, JobUpdate, Media
from bot.backends.replies import described_prompts

from . import errors
from .facts import (
    CANCEL,
    CANCEL_REASON,
    CODE_BANNED_PROMPT,
    CODE_EXISTED,
    CODE_FAILURE,
    CODE_IN_QUEUE,
    CODE_NOT_FOUND,
    CODE_QUEUE_REJECTED,
    CODE_SUCCESS,
    CODE_VALIDATION_ERROR,
    DESCRIBE,
    FAILURE,
    IN_PROGRESS,
    MAX_NOTIFY_HOOK,
    MAX_STATE,
    MODAL,
    NOT_START,
    SUBMITTED,
    SUCCESS,
    WAITING_FOR_MODAL,
    is_moderation,
)
from .models import SubmitResult, Task

__all__ = ["error_of", "prompts_of", "refusal", "seed_error", "seed_of", "status_of", "submitted", "update_of"]

_STATUSES = {
    NOT_START: BackendStatus.QUEUED,  # in the proxy's own queue, not sent to Midjourney yet
    # SUBMITTED: Midjourney took the interaction and the proxy counts it against the account's slots
    # (DiscordService sets StartTime and "0%" here), so it is running even before its first percentage.
    SUBMITTED: BackendStatus.RUNNING,
    IN_PROGRESS: BackendStatus.RUNNING,
    SUCCESS: BackendStatus.DONE,
    MODAL: BackendStatus.AWAITING_PROMPT,
    CANCEL: BackendStatus.CANCELLED,
}
_FINAL = (BackendStatus.FAILED, BackendStatus.MODERATED, BackendStatus.CANCELLED)
_ADMIN = "the mj-proxy's own admin console"


def status_of(task: Task) -> BackendStatus:
    """Where the task stands; an unknown status counts as running (never final on a guess)."""
    if task.status == FAILURE:
        reason = (task.failReason or "").strip()
        if reason == CANCEL_REASON:  # trueai cancels by failing the task with this reason (TaskController)
            return BackendStatus.CANCELLED
        return BackendStatus.MODERATED if is_moderation(reason) else BackendStatus.FAILED
    return _STATUSES.get(task.status or "", BackendStatus.RUNNING)


def claimed_status(task: Task) -> BackendStatus | None:
    """The status a callback names, None when it names none the relay knows."""
    return status_of(task) if task.status in _STATUSES or task.status == FAILURE else None


def _content_type(url: str, given: str | None, major: str) -> str | None:
    if given and given.lower().startswith(f"{major}/"):
        return given
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed if guessed and guessed.startswith(f"{major}/") else None


def media_of(task: Task) -> tuple[Media, ...]:
    """The task's files: its video (video tasks), then its image; the size belongs to the main one."""
    video_url = task.videoUrl or next((item.url for item in task.videoUrls if item.url), None)
    found: list[Media] = []
    if video_url:
        found.append(Media(url=video_url, content_type=_content_type(video_url, task.contentType, "video") or
                           "video/mp4", size=task.size, width=task.width, height=task.height))
    if task.imageUrl and task.imageUrl != video_url:
        found.append(Media(url=task.imageUrl, content_type=_content_type(task.imageUrl, task.contentType, "image"),
                           size=None if video_url else task.size, width=task.width, height=task.height))
    return tuple(found)


def buttons_of(task: Task) -> tuple[Button, ...]:
    """Its buttons by label-or-emoji, each pressed by its customId (taken fresh from every task)."""
    return tuple(Button(name=button.name, ref=button.customId) for button in task.buttons
                 if button.name and button.customId)


def prompts_of(task: Task) -> tuple[str, ...]:
    """The prompts of a finished describe: Midjourney's embed text, which trueai keeps as properties.finalPrompt
    (and as its description)."""
    if task.action != DESCRIBE or task.status != SUCCESS:
        return ()
    for text in (task.properties.get("finalPrompt"), task.description, task.promptEn):
        if isinstance(text, str) and (prompts := described_prompts(text)):
            return prompts
    return ()


def update_of(task: Task, raw: dict[str, Any] | None = None) -> JobUpdate:
    """A task as the relay sees it; `raw` is the body to keep (masked), else the task's own."""
    status = status_of(task)
    done = status is BackendStatus.DONE
    error = None
    if status is BackendStatus.CANCELLED:
        error = "The task was cancelled at the mj-proxy."
    elif status in _FINAL:
        error = (task.failReason or "").strip() or "The mj-proxy reported the task failed without a reason."
    return JobUpdate(
        job_id=task.id,
        status=status,
        progress=task.percent,
        # While it runs, imageUrl is Midjourney's blurry preview (DiscordWebSocketService, IN_PROGRESS).
        preview_url=task.imageUrl if status in (BackendStatus.QUEUED, BackendStatus.RUNNING) else None,
        media=media_of(task) if done else (),
        buttons=buttons_of(task) if done else (),
        ref=task.state,
        callback_url=task.notify_hook,
        prompt=task.prompt or task.promptEn,
        error=error,
        prompts=prompts_of(task),
        created_at=task.submitTime / 1000 if task.submitTime else None,
        raw=raw if raw is not None else task.model_dump(),
    )


def _waits_for_modal(result: SubmitResult) -> bool:
    properties = result.properties
    return (result.description or "").strip() == WAITING_FOR_MODAL or properties.get("remix") is True or \
        properties.get("status") == MODAL


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def submitted(result: SubmitResult, *, ref: str | None, callback_url: str | None, prompt: str | None,
              button: str | None = None, raw: dict[str, Any] | None = None) -> JobUpdate:
    """The task a submission made (codes 1, 22, and 21 waiting for its modal); raises for every other answer."""
    code = result.code
    kept = raw if raw is not None else result.model_dump()
    if code in (CODE_SUCCESS, CODE_IN_QUEUE) or (code == CODE_EXISTED and _waits_for_modal(result)):
        if not result.result:
            # Taken, but under no id we could follow: only finding it by its state can tell.
            raise BackendError(ErrorKind.TIMEOUT, f"the mj-proxy accepted the task without its id: {result.words}",
                               status=code)
        if code == CODE_EXISTED:
            # Without a prompt of ours (Remix on at the account), the one the modal starts from.
            final_prompt = result.properties.get("finalPrompt")
            if not prompt and isinstance(final_prompt, str) and final_prompt:
                prompt = final_prompt
            return JobUpdate(job_id=result.result, status=BackendStatus.AWAITING_PROMPT, ref=ref,
                             callback_url=callback_url, prompt=prompt or None, raw=kept)
        queued = code == CODE_IN_QUEUE
        return JobUpdate(job_id=result.result, status=BackendStatus.QUEUED if queued else BackendStatus.RUNNING,
                         queue_position=_int(result.properties.get("numberOfQueues")) if queued else None,
                         ref=ref, callback_url=callback_url, prompt=prompt, raw=kept)
    raise refusal(result, button)


def _field(name: str, problem: str) -> Callable[[str, int | None, str | None], BackendError]:
    def make(words: str, code: int | None, button: str | None) -> BackendError:
        return BackendError(ErrorKind.BAD_REQUEST, words, status=code, field_name=name, problem=problem)
    return make


def _kind(kind: ErrorKind) -> Callable[[str, int | None, str | None], BackendError]:
    def make(words: str, code: int | None, button: str | None) -> BackendError:
        return BackendError(kind, words, status=code)
    return make


def _unknown_button(words: str, code: int | None, button: str | None) -> BackendError:
    return BackendError(ErrorKind.BAD_REQUEST, words, status=code, button=button,
                        problem="the mj-proxy does not know this button")


# trueai's code-4 descriptions (SubmitController, TaskService), matched by substring, with what each one means.
_VALIDATION: tuple[tuple[str, Callable[[str, int | None, str | None], BackendError]], ...] = (
    ("prompt不能为空", _field("prompt", "is missing")),
    ("State参数过长", _field("state", f"is too long (at most {MAX_STATE} characters)")),
    ("NotifyHook参数过长", _field("notifyHook", f"is too long (at most {MAX_NOTIFY_HOOK} characters)")),
    ("base64格式错误", _field("base64Array", "is not a base64 data URL")),
    ("禁止上传", _field("base64Array", "is refused: this mj-proxy takes no uploaded images")),
    ("关联任务状态错误", _field("taskId", "is not finished: only a SUCCESS task takes buttons")),
    ("不支持 remix", _field("enableRemix", "needs Remix on for the proxy's Midjourney account (its admin)")),
    ("未知的 Action 类型", _unknown_button),
    ("并发数已达上限", _kind(ErrorKind.BUSY)),  # this token's running tasks are at the proxy's limit
    ("队列数已达上限", _kind(ErrorKind.BUSY)),  # ... or its queued ones
    ("服务暂不可用", _kind(ErrorKind.UNAVAILABLE)),  # the proxy's Redis is down
)


def refusal(result: SubmitResult, button: str | None = None) -> BackendError:
    """The BackendError for a submit answer that made nothing (every code but 1, 22 and a modal's 21)."""
    code = result.code
    words = result.words or f"the mj-proxy answered code {code}"
    properties = result.properties
    if code == CODE_EXISTED:
        return BackendError(ErrorKind.ALREADY_DONE, words, status=code, job_id=result.result, button=button)
    if code == CODE_QUEUE_REJECTED:
        return BackendError(ErrorKind.BUSY, words, status=code)
    if code == CODE_BANNED_PROMPT:
        word = properties.get("bannedWord")
        return BackendError(ErrorKind.MODERATED, words, status=code, word=word if isinstance(word, str) else None)
    if code == CODE_NOT_FOUND:
        # "无可用的账号实例": no Midjourney account of the proxy can take a task now; nothing is missing.
        kind = ErrorKind.UNAVAILABLE if "账号实例" in words else ErrorKind.NOT_FOUND
        return BackendError(kind, words, status=code)
    if code == CODE_VALIDATION_ERROR:
        for needle, make in _VALIDATION:
            if needle in words:
                return make(words, code, button)
        return BackendError(ErrorKind.BAD_REQUEST, words, status=code, button=button)
    if code == CODE_FAILURE:
        # trueai's own full queue answers 9, "提交失败，队列已满，请稍后重试" (DiscordService.RedisEnqueue).
        if "队列已满" in words:
            return BackendError(ErrorKind.BUSY, words, status=code)
        return BackendError(ErrorKind.JOB_FAILED, words, status=code)
    if code is None and not (result.description or result.message):
        return BackendError(ErrorKind.UNAVAILABLE, "the mj-proxy answered an object that is not a submit result")
    # The proxy's Result.Fail (code -1: model validation, a logic error) and codes this relay does not know.
    return BackendError(ErrorKind.BAD_REQUEST, words, status=code, button=button)


def seed_of(result: SubmitResult) -> str:
    """The seed GET /task/{id}/image-seed answered (code 1, `result`); BackendError for every other answer."""
    words = result.words or f"the mj-proxy answered code {result.code}"
    if result.code == CODE_SUCCESS:
        if result.result and result.result.isdigit():
            return result.result
        raise BackendError(ErrorKind.UNAVAILABLE, f"the mj-proxy answered a seed that is not a number: "
                                                  f"{result.result!r}", status=result.code)
    if result.code == CODE_NOT_FOUND and "seed" in words.lower():
        # "未找到 seed": the proxy's account got no seed from Midjourney, which it asks for in a private message.
        raise BackendError(ErrorKind.UNSUPPORTED, "The mj-proxy found no seed for this task: its Midjourney account "
                           f"may need Midjourney's private-message channel set in {_ADMIN} ({words}).",
                           status=result.code)
    if result.code == CODE_FAILURE:  # the proxy's seedError: Midjourney's request for the seed failed
        raise BackendError(ErrorKind.JOB_FAILED, f"the mj-proxy could not get the seed: {words}", status=result.code)
    raise refusal(result)


def seed_error(exc: errors.MjproxyError) -> BackendError:
    """An HTTP-level failure of GET /task/{id}/image-seed: its 400 is a task that is not finished."""
    if isinstance(exc, errors.BadRequest) and exc.code == CODE_VALIDATION_ERROR:
        return BackendError(ErrorKind.BAD_REQUEST, str(exc), status=exc.status, field_name="taskId",
                            problem="is not finished: only a finished task has a seed")
    return error_of(exc)


def error_of(exc: errors.MjproxyError) -> BackendError:
    """One HTTP-level failure as the relay's kind."""
    detail = str(exc)
    status = exc.status or None
    if isinstance(exc, errors.Unauthorized):
        return BackendError(ErrorKind.UNAUTHORISED, detail, status=status)
    if isinstance(exc, errors.NotFound):
        return BackendError(ErrorKind.NOT_FOUND, detail, status=status)
    if isinstance(exc, errors.BadRequest):
        return BackendError(ErrorKind.BAD_REQUEST, detail, status=status)
    if isinstance(exc, errors.RateLimited):
        return BackendError(ErrorKind.BUSY, detail, status=status, retry_after=exc.retry_after, rate_limited=True)
    if isinstance(exc, errors.MjproxyTimeout):
        return BackendError(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, errors.MjproxyConnectionError):
        return BackendError(ErrorKind.UNAVAILABLE, detail)
    # ServerError: a 5xx, a gateway's page or an answer the protocol does not describe; says nothing about the
    # request, so it is an outage, retried with backoff.
    return BackendError(ErrorKind.UNAVAILABLE, detail, status=status)
