"""mj-proxy's bodies as tolerant models: every field they do not know is kept, ids arrive as strings or numbers.

Field names follow trueai-org/midjourney-proxy at ed32197 as System.Text.Json writes them (camelCase, enums by
name, nulls included): src/Midjourney.Base/Models/TaskInfo.cs, SubmitResultVO.cs, CustomComponentModel.cs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["MediaUrl", "SubmitResult", "Task", "TaskButton", "parse_progress", "task_id"]

_PERCENT = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*%?\s*$")


def task_id(value: Any) -> Any:
    """A task id as a string: proxies send digit strings, some gateways JSON numbers."""
    if isinstance(value, bool):
        return value  # left for the str check to refuse: True is not an id
    if isinstance(value, int):
        return str(value)
    return value


def _result(value: Any) -> Any:
    # `result` is `dynamic` in SubmitResultVO: an id, a number, a list (upload answers) or null.
    if isinstance(value, list):
        return ",".join(str(task_id(item)) for item in value)
    if isinstance(value, dict):
        return None
    return task_id(value)


def _list(value: Any) -> Any:
    return [] if value is None else value


def _dict(value: Any) -> Any:
    return {} if value is None else value


def _text(value: Any) -> Any:
    # A JSON number where text is expected (progress 40, a style code) is kept as its text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _media_items(value: Any) -> Any:
    # trueai lists {url, thumbnail} objects; older proxies and some gateways list bare URLs.
    if value is None:
        return []
    if isinstance(value, list):
        return [{"url": item} if isinstance(item, str) else item for item in value]
    return value


TaskId = Annotated[str, BeforeValidator(task_id)]
Text = Annotated[str | None, BeforeValidator(_text)]


class _Tolerant(BaseModel):
    # Proxies and gateways add fields with every release: refusing them would break the relay on their deploy.
    model_config = ConfigDict(extra="allow")


class TaskButton(_Tolerant):
    """One of Discord's buttons under a finished task (CustomComponentModel)."""

    customId: Text = ""
    emoji: Text = ""
    label: Text = ""
    style: int | None = None
    type: int | None = None

    @property
    def name(self) -> str:
        """What a member sees: the label, else the emoji (🔄 and the arrows have no label)."""
        return (self.label or "").strip() or (self.emoji or "").strip()


class MediaUrl(_Tolerant):
    """One entry of imageUrls / videoUrls (TaskInfoImageUrl, TaskInfoVideoUrl)."""

    url: str | None = None
    thumbnail: str | None = None


class Task(_Tolerant):
    """A task as GET /task/{id}/fetch, the task lists and the notifyHook callbacks carry it (TaskInfo)."""

    id: TaskId
    parentId: Annotated[str | None, BeforeValidator(task_id)] = None
    action: str | None = None
    status: str | None = None
    prompt: str | None = None
    promptEn: str | None = None
    description: str | None = None
    state: str | None = None
    submitTime: float | None = None  # epoch milliseconds
    startTime: float | None = None
    finishTime: float | None = None
    progress: Text = None  # "0%" .. "100%"
    imageUrl: str | None = None  # a preview while it runs, the result once done
    imageUrls: Annotated[list[MediaUrl], BeforeValidator(_media_items)] = []
    videoUrl: str | None = None
    videoUrls: Annotated[list[MediaUrl], BeforeValidator(_media_items)] = []
    failReason: str | None = None
    buttons: Annotated[list[TaskButton], BeforeValidator(_list)] = []
    properties: Annotated[dict[str, Any], BeforeValidator(_dict)] = {}
    width: int | None = None
    height: int | None = None
    size: int | None = None
    contentType: str | None = None

    @property
    def percent(self) -> int | None:
        """progress as a whole percentage, None when the task gives none."""
        return parse_progress(self.progress)

    @property
    def notify_hook(self) -> str | None:
        """The task's callback URL: trueai keeps it in properties.notifyHook; a gateway may put it on top."""
        for value in (self.properties.get("notifyHook"), (self.model_extra or {}).get("notifyHook")):
            if isinstance(value, str) and value:
                return value
        return None


class SubmitResult(_Tolerant):
    """Every /submit answer (SubmitResultVO); the proxy's filters answer its `Result` shape (success, message)."""

    code: int | None = None
    description: str | None = None
    result: Annotated[str | None, BeforeValidator(_result)] = None
    properties: Annotated[dict[str, Any], BeforeValidator(_dict)] = {}
    message: str | None = None  # Result.Fail's words, when that is what came

    @property
    def words(self) -> str:
        """The proxy's own words on this answer (often Chinese): for details and logs, not for members."""
        return (self.description or self.message or "").strip()


def parse_progress(progress: str | None) -> int | None:
    """ "NN%" (or a bare number) as a whole percentage within 0..100, None for anything else."""
    if not progress:
        return None
    match = _PERCENT.match(progress)
    if not match:
        return None
    return max(0, min(100, int(float(match.group(1)))))
