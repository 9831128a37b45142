"""The aiohttp listener inside the bot's process: useapi's callbacks and a health check.

useapi documents no callback signature, so the URL itself carries an unguessable per-install secret; the
access log masks it, and a callback is only ever a hint that the relay checks with useapi before believing.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from bot.relay import Relay

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "/callbacks/useapi"
MAX_BODY = 64 * 1024  # a job body is a few KiB; anything far larger is not from useapi
RELAY_KEY = web.AppKey("relay", Relay)
SECRET_KEY = web.AppKey("secret", str)


class MaskedAccessLogger(AbstractAccessLogger):
    """An access log line per request, with the callback secret taken out of the path."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = request.path
        if path.startswith(CALLBACK_PREFIX + "/"):
            parts = path.split("/")
            if len(parts) > 3:
                parts[3] = "***"
            path = "/".join(parts)
        self.logger.info("%s %s %s %d %.1fms", request.remote, request.method, path, response.status,
                         time * 1000)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def callback(request: web.Request) -> web.Response:
    expected = request.app[SECRET_KEY]
    given = request.match_info["secret"]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return web.json_response({"error": "not found"}, status=404)
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        raw = await request.content.read(MAX_BODY + 1)
    except (ValueError, ConnectionError):
        return web.json_response({"error": "unreadable body"}, status=400)
    if len(raw) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return web.json_response({"error": "malformed JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object"}, status=400)
    status = await request.app[RELAY_KEY].handle_callback(request.match_info["ref"], body)
    return web.json_response({"status": status}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer every failure with a small JSON body; never echo the request back."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        return web.json_response({"error": exc.reason}, status=exc.status)


def make_app(relay: Relay, secret: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_as_json])
    app[RELAY_KEY] = relay
    app[SECRET_KEY] = secret
    app.router.add_get("/healthz", healthz)
    app.router.add_post(CALLBACK_PREFIX + "/{secret}/{ref}", callback)
    return app


class Listener:
    """Runs an app on HOST:PORT from setup_hook until close()."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log_class=MaskedAccessLogger,
                                     access_log=logging.getLogger("bot.access"))
        self.host = host
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            # Port 0 asks the OS for a free port (tests); read back which one it gave.
            for address in self._runner.addresses:
                self.port = int(address[1])
                break
        log.info("listening for callbacks on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
