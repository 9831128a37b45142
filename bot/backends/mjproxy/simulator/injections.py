"""Answers a test queued for the next calls to an endpoint, and what the proxy would send with each.

A value under 100 is a result code, answered as a SubmitResultVO (HTTP 200, or 404 for code 3 on a call that
names a task, as SubmitController does); 100 and up is an HTTP status with the proxy's body for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.backends.mjproxy.facts import (
    CODE_BANNED_PROMPT,
    CODE_EXISTED,
    CODE_FAILURE,
    CODE_NOT_FOUND,
    CODE_QUEUE_REJECTED,
    CODE_VALIDATION_ERROR,
    FAILURE,
)
from bot.backends.simkit import InjectionQueue

from .answers import (
    BAD_PARAMS,
    BANNED,
    EXISTED,
    NO_INSTANCE,
    PARENT_MISSING,
    QUEUE_FULL_23,
    SYSTEM_FAILURE,
    UNAUTHORISED,
    UNAVAILABLE_USER,
    json_response,
    logic_failure,
    outage_page,
    phrase,
    submit_result,
    text_response,
)
from .engine import TaskEngine

__all__ = ["Injection", "Injections"]


@dataclass
class Injection:
    """Answer `remaining` more calls whose path ends with endpoint with this code or status (and body)."""

    endpoint: str
    value: int
    body: dict[str, Any] | None
    remaining: int


class Injections(InjectionQueue[Injection]):
    """The queued injections, first queued first used."""

    def __init__(self, engine: TaskEngine) -> None:
        super().__init__()
        self._engine = engine

    def add(self, injection: Injection) -> None:
        """Queue an injection after the ones already queued; codes that make a task cannot be injected."""
        if injection.body is None and injection.value < 100 and injection.value not in _MADE_UP:
            raise ValueError(f"code {injection.value} makes a task: get it for real (a free slot gives 1, "
                             "max_running gives 22, Custom Zoom gives 21) or inject it with a body")
        super().add(injection)

    def answer(self, injection: Injection, request: web.Request, body: dict[str, Any]) -> web.Response:
        """The injected answer: the test's body, else the proxy's for that code or status and call."""
        value = injection.value
        names_task = not request.path.endswith(("submit/imagine", "submit/describe", "submit/blend"))
        if injection.body is not None:
            if value < 100:
                return json_response(injection.body, 404 if value == CODE_NOT_FOUND and names_task else 200)
            return json_response(injection.body, value)
        if value < 100:
            return self._code(value, body, names_task)
        if value in (401, 403):
            return text_response(value, UNAUTHORISED if value == 401 else UNAVAILABLE_USER)
        if value == 404:
            return submit_result(CODE_NOT_FOUND, PARENT_MISSING, http_status=404)
        if value == 429:
            return web.Response(status=429)  # RateLimitingMiddleware writes no body
        if value == 500:
            return logic_failure("操作失败", status=500)  # CustomLogicExceptionFilterAttribute
        if value >= 500:
            return outage_page(value)
        return text_response(value, phrase(value))

    def _code(self, code: int, body: dict[str, Any], names_task: bool) -> web.Response:
        if code == CODE_EXISTED:
            existing = self._existing(body)
            task = self._engine.tasks.get(existing or "", {})
            return submit_result(code, EXISTED, existing, status=task.get("status", FAILURE),
                                 imageUrl=task.get("imageUrl"))
        if code == CODE_BANNED_PROMPT:
            prompt = str(body.get("prompt") or "")
            words = prompt.split()
            return submit_result(code, BANNED, promptEn=prompt, bannedWord=words[0] if words else "")
        if code == CODE_NOT_FOUND:
            if names_task:
                return submit_result(code, PARENT_MISSING, http_status=404)
            return submit_result(code, NO_INSTANCE)
        return submit_result(code, _MADE_UP[code])

    def _existing(self, body: dict[str, Any]) -> str | None:
        """The task this press already made on its parent, else a new id (as if made elsewhere)."""
        parent, custom_id = body.get("taskId"), body.get("customId")
        for task in self._engine.tasks.values():
            if task.get("parentId") == parent and task["properties"].get("custom_id") == custom_id:
                return str(task["id"])
        return self._engine.ids.task_id()


# The codes with a default body: the refusals (and 21, 3 and 24, worded above).
_MADE_UP: dict[int, str] = {
    CODE_NOT_FOUND: NO_INSTANCE,
    CODE_VALIDATION_ERROR: BAD_PARAMS,
    CODE_FAILURE: SYSTEM_FAILURE,
    CODE_EXISTED: EXISTED,
    CODE_QUEUE_REJECTED: QUEUE_FULL_23,
    CODE_BANNED_PROMPT: BANNED,
}
