"""Typed errors of the mj-proxy client: one class per kind of HTTP answer under a common base.

Result codes (an HTTP 200 whose `code` is not 1) are not errors here: the client returns them as a
SubmitResult and `answers` decides. HTTP errors come as plain text (401/403 from SimpleAuthMiddleware.cs),
as a SubmitResultVO (404 from SubmitController), as the proxy's `Result` (500), or as a gateway's HTML page.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

__all__ = [
    "BadRequest",
    "MjproxyConnectionError",
    "MjproxyError",
    "MjproxyTimeout",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "error_for",
]

# A text or HTML body is kept only this long so logs stay readable.
MAX_TEXT_BODY = 300


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _words(text: str) -> tuple[dict[str, Any], str]:
    """The body as a JSON object (if it is one) and the proxy's words in it (else the text itself, trimmed)."""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("description", "message", "error", "title"):
            value = parsed.get(key)
            if isinstance(value, str) and value.strip():
                return parsed, value.strip()
        return parsed, ""
    stripped = " ".join(text.split())
    if stripped.startswith("<"):
        # A gateway's error page: its title says enough.
        lowered = stripped.lower()
        start, end = lowered.find("<title>"), lowered.find("</title>")
        stripped = stripped[start + 7 : end].strip() if 0 <= start < end else "an HTML error page"
    return {}, stripped[:MAX_TEXT_BODY]


class MjproxyError(Exception):
    """An mj-proxy call that did not succeed: its HTTP status (0 without an answer) and the proxy's words."""

    def __init__(self, status: int, text: str = "", *, where: str = "", retry_after: float | None = None) -> None:
        self.status = status
        self.body, words = _words(text)
        self.words = words or (_reason(status) if status else "no answer")
        self.where = where  # "POST submit/imagine"
        self.retry_after = retry_after
        code = self.body.get("code")
        self.code: int | None = code if isinstance(code, int) and not isinstance(code, bool) else None
        prefix = f"mj-proxy {status}" if status else "mj-proxy"
        super().__init__(f"{prefix} {where}: {self.words}" if where else f"{prefix}: {self.words}")


class BadRequest(MjproxyError):
    """400: the proxy refused the request itself (cancel by a non-admin token: "演示模式，禁止操作")."""


class Unauthorized(MjproxyError):
    """401 or 403: no such token ("Authorization header missing."), a disabled or unavailable user."""


class NotFound(MjproxyError):
    """404 (an unknown parent or modal task), or a fetch that answered no task (204, null)."""


class RateLimited(MjproxyError):
    """429: the proxy's own per-IP rate limit (RateLimitingMiddleware.cs), an empty body."""


class ServerError(MjproxyError):
    """5xx, any other status, or an answer that is not what the endpoint returns (HTML, no JSON)."""


class MjproxyConnectionError(MjproxyError):
    """The proxy could not be reached: refused, reset, DNS; status is 0."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(0, message, where=where)


class MjproxyTimeout(MjproxyConnectionError):
    """The proxy did not answer within the client's timeout (the request may still have been taken)."""


def error_for(status: int, text: str, *, where: str = "", retry_after: float | None = None) -> MjproxyError:
    """The exception for a non-2xx answer."""
    if status == 400:
        return BadRequest(status, text, where=where)
    if status in (401, 403):
        return Unauthorized(status, text, where=where)
    if status == 404:
        return NotFound(status, text, where=where)
    if status == 429:
        return RateLimited(status, text, where=where, retry_after=retry_after)
    return ServerError(status, text, where=where)
