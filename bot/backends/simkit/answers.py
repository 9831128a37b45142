"""What both simulators read and write the same way in every request: a JSON object body, the root a caller
reached them on, JSON with its unicode left readable, and the name of an HTTP status.

The bodies and words of each backend's answers are that backend's contract and stay in its own simulator.
"""

from __future__ import annotations

import json
from functools import partial
from http import HTTPStatus
from typing import Any

from aiohttp import web

__all__ = ["BadBody", "checked_body", "json_unescaped", "phrase", "read_body", "root_of"]

# Both backends write non-ASCII text as it is (useapi's prompts, the proxy's Chinese words), not as \u escapes.
_DUMPS = partial(json.dumps, ensure_ascii=False)


class BadBody(Exception):
    """The request body is not a JSON object."""


def json_unescaped(data: Any, status: int, reason: str | None = None) -> web.Response:
    """data as JSON, unicode unescaped, with this status (and reason phrase, when it is not HTTP's)."""
    return web.json_response(data, status=status, reason=reason, dumps=_DUMPS)


def phrase(status: int) -> str:
    """The HTTP reason phrase of a status, "Error" for the ones HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def root_of(request: web.Request) -> str:
    """scheme://host as the caller reached us, where the files a request makes are served."""
    return f"{request.scheme}://{request.host}"


async def read_body(request: web.Request) -> dict[str, Any] | None:
    """The JSON object the request carries, None without a body; BadBody for anything else."""
    if not request.body_exists:
        return None
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadBody from None
    if not isinstance(data, dict):
        raise BadBody
    return data


async def checked_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, {} without a body, for a handler behind a middleware that has already answered
    a body that is not one; request.read() is cached, so the body is not read twice."""
    return await read_body(request) or {}
