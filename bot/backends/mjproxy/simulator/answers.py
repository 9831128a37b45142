"""How the simulated proxy answers: SubmitResultVO bodies, the proxy's own words, plain-text and HTML errors,
and the checks of a request body.

The words are trueai-org/midjourney-proxy's at ed32197 (Controllers/SubmitController.cs, Services/TaskService.cs,
Services/DiscordService.cs, SimpleAuthMiddleware.cs), except where a comment names novicezk/midjourney-proxy,
whose codes 21 ("already exists"), 23 and 24 trueai defines in Dto/ReturnCode.cs but no longer sends.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from bot.backends.mjproxy.facts import MAX_NOTIFY_HOOK, MAX_STATE
from bot.backends.simkit import BadBody, json_unescaped, phrase, read_body, root_of

__all__ = [
    "BadBody",
    "banned_word",
    "check_base",
    "json_response",
    "logic_failure",
    "outage_page",
    "phrase",
    "read_body",
    "root_of",
    "submit_result",
    "text_response",
]

SUBMITTED = "提交成功"
IN_QUEUE = "排队中，前面还有{ahead}个任务"
EXISTED = "任务已存在"  # novicezk SubmitController.change: an upscale that was already made
QUEUE_FULL_23 = "队列已满，请稍后尝试"  # novicezk DiscordInstanceImpl.submitTask
QUEUE_FULL_9 = "提交失败，队列已满，请稍后重试"  # trueai DiscordService.RedisEnqueue
BANNED = "可能包含敏感词"
SYSTEM_FAILURE = "提交失败，系统异常"
PARENT_MISSING = "关联任务不存在或已失效"
NO_INSTANCE = "无可用的账号实例"
PROMPT_EMPTY = "prompt不能为空"
BAD_PARAMS = "参数错误"
STATE_TOO_LONG = "State参数过长，最大255字符"
HOOK_TOO_LONG = "NotifyHook参数过长，最大2000字符"
BAD_BASE64 = "base64格式错误"
MASK_MISSING = "蒙版不能为空"
PARENT_NOT_DONE = "关联任务状态错误"
UNKNOWN_ACTION = "未知的 Action 类型"
NO_IMAGE = "base64或link不能为空"  # SubmitController.Describe
BAD_LINK = "链接格式错误"
BLEND_COUNT = "图片参数错误，2~5张图片"  # SubmitController.Blend
BAD_DIMENSIONS = "dimensions参数错误"
FOUND = "成功"  # TaskController.ImageSeed
REMIX_OFF = "当前账号不支持 remix，请开启 remix 功能"
UNAUTHORISED = "Authorization header missing."  # trueai says so for a wrong token too
UNAVAILABLE_USER = "账号不可用"
BANNED_WORDS = ("forbidden",)  # the simulated proxy's banned-word list
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=\s]+)$")


def json_response(data: Any, status: int = 200) -> web.Response:
    """data as JSON, unicode unescaped as System.Text.Json's relaxed encoder writes it."""
    return json_unescaped(data, status)


def submit_result(code: int, description: str, result: str | None = None, *, http_status: int = 200,
                  **properties: Any) -> web.Response:
    """A SubmitResultVO: {code, description, result, properties}."""
    return json_response({"code": code, "description": description, "result": result, "properties": properties},
                         http_status)


def logic_failure(message: str, *, status: int = 200) -> web.Response:
    """The proxy's Result.Fail, as its filters answer a body that does not bind or a logic error (code -1)."""
    # .NET ticks: 100 ns since 0001-01-01.
    ticks = int(time.time() * 10**7) + 621_355_968_000_000_000
    return json_response({"success": False, "code": -1, "message": message, "timestamp": str(ticks)}, status)


def text_response(status: int, words: str) -> web.Response:
    """A plain-text answer, as SimpleAuthMiddleware writes its 401 and 403."""
    return web.Response(status=status, text=words, content_type="text/plain")


def outage_page(status: int) -> web.Response:
    """What a reverse proxy in front of a down mj-proxy answers: HTML, not JSON."""
    title = f"{status} {phrase(status)}"
    page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr>" \
           "<center>nginx</center></body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


def _binds(body: dict[str, Any], strings: tuple[str, ...], bools: tuple[str, ...] = ()) -> bool:
    # System.Text.Json binds a string property from a JSON string or null only; anything else fails the model.
    return all(body.get(name) is None or isinstance(body[name], str) for name in strings) and \
        all(body.get(name) is None or isinstance(body[name], bool) for name in bools)


def check_base(body: dict[str, Any], strings: tuple[str, ...], bools: tuple[str, ...] = ()) -> web.Response | None:
    """The answer for a body that does not bind, or whose state or notifyHook is too long (NewTask), else None."""
    if not _binds(body, ("state", "notifyHook", *strings), bools):
        return logic_failure("参数异常")
    if len(body.get("state") or "") > MAX_STATE:
        return submit_result(4, STATE_TOO_LONG)
    if len(body.get("notifyHook") or "") > MAX_NOTIFY_HOOK:
        return submit_result(4, HOOK_TOO_LONG)
    return None


def check_data_urls(values: Any) -> bool:
    """Whether base64Array is a list of data URLs (DataUrl.Parse)."""
    return isinstance(values, list) and all(isinstance(v, str) and _DATA_URL.match(v) for v in values)


def banned_word(prompt: str) -> str | None:
    """The first word of the banned list in the prompt, as it is written there (DiscordService.CheckBanned)."""
    for word in BANNED_WORDS:
        match = re.search(rf"\b{re.escape(word)}\b", prompt, re.IGNORECASE)
        if match:
            return match.group(0)
    return None
