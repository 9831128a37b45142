"""The aiohttp listener inside the bot's process: the backend's callbacks, liveness and readiness, and metrics.

No backend signs its callbacks, so the URL itself carries an unguessable per-install secret; the access log
masks it, and a callback is only ever a hint that the relay checks with the backend before believing.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from bot.editor import add_routes, masked_editor_path
from bot.metrics import CONTENT_TYPE_LATEST
from bot.relay import IMAGES_PATH, Relay, served_image

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "/callbacks"  # then /<backend>/<secret>/<job reference>
MAX_BODY = 64 * 1024  # a job body is a few KiB; anything far larger is not from a backend
# How long close() waits for callbacks being handled (each is a few store writes) before cutting them off.
SHUTDOWN_SECONDS = 5.0
READY_PATH = "/readyz"


@dataclass(frozen=True)
class Readiness:
    """What /readyz reports: each check's problem (None when it passes), and the account's pause, which is
    reported but fails nothing: every replica shares the account, so a load balancer pulling them all would only
    add an outage to the account's problem."""

    problems: Mapping[str, str | None]
    paused: str | None = None
    notes: Mapping[str, str] = field(default_factory=dict)  # what a passing check says instead of "ok"

    @property
    def failing(self) -> list[str]:
        return [name for name, problem in self.problems.items() if problem is not None]


class ReadinessProbe(Protocol):
    """Asks the bot whether it can serve; the listener needs nothing else from discord.py."""

    async def __call__(self) -> Readiness: ...


class RoleProbe(Protocol):
    """This process's part at Discord's gateway in a word (connected, connecting, standby), or None."""

    def __call__(self) -> str | None: ...


RELAY_KEY = web.AppKey("relay", Relay)
READINESS_KEY = web.AppKey("readiness", ReadinessProbe)
ROLE_KEY = web.AppKey("role", RoleProbe)
SECRET_KEY = web.AppKey("secret", str)
METRICS_TOKEN_KEY = web.AppKey("metrics_token", str)


def masked_path(path: str, secret: str | None) -> str:
    """`path` fit to log: the secret's segment of a callback path, and the secret wherever else it is, masked."""
    if path.startswith(CALLBACK_PREFIX + "/"):
        parts = path.split("/")
        if len(parts) > 3:
            parts[3] = "***"
        path = "/".join(parts)
    # A right secret on a wrong path (a proxy prefix, a doubled slash) must not be logged either.
    if secret and secret in path:
        path = path.replace(secret, "***")
    # An editor link's token is a member's key, a kept image's token its only guard: neither is logged.
    path = masked_editor_path(path)
    if path.startswith(IMAGES_PATH + "/"):
        path = IMAGES_PATH + "/***"
    return path


class MaskedAccessLogger(AbstractAccessLogger):
    """An access log line per request, with the callback secret taken out of the path."""

    # Set on the subclass a Listener makes: aiohttp builds the logger itself, and a request refused before
    # routing (a bad header) has no app to read the secret from.
    secret: ClassVar[str | None] = None

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        # Accepted requests are routine (several callbacks a job, metrics scrapes): DEBUG. Refusals may be
        # someone probing the callback URL: INFO, so they show at the default level. A load balancer asking
        # /readyz every few seconds while the bot is not ready is routine too (the bot logs why once, itself).
        routine = response.status < 400 or request.path == READY_PATH
        level = logging.DEBUG if routine else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        path = masked_path(request.path, self.secret)
        self.logger.log(level, "%s %s %s %d %.1fms", request.remote, request.method, path, response.status,
                        time * 1000)


def access_logger_for(secret: str | None) -> type[MaskedAccessLogger]:
    """The access logger class for a listener whose callback secret is `secret`."""
    return type("MaskedAccessLogger", (MaskedAccessLogger,), {"secret": secret})


_UNUSABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


# What must be in a JSON text for one of its strings to hold an unusable character: a strict parser refuses raw
# control characters, so each arrives escaped (\u0000-\u001f, \b, \f); DEL, escaped (\u007f) or raw, as JSON
# lets it through; a surrogate, escaped (\ud800-\udfff) or as its raw bytes (json.loads lets those through from
# bytes, "surrogatepass"). Any other escape (a serializer that writes "…" as \u2026) is harmless. A body with
# none of them (nearly every callback) needs no walk; one with them (or an escaped backslash before such
# letters) is walked.
_UNUSABLE_ESCAPE = re.compile(rb"\\(?:u00[01]|u007[fF]|u[dD][89a-fA-F]|[bf])")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def may_be_unusable(raw: bytes) -> bool:
    """Whether the JSON text `raw` may hold an unusable character (above); each search has a literal to scan for,
    which one alternation of them all would not have (a few microseconds on every callback)."""
    return (_UNUSABLE_ESCAPE.search(raw) is not None or b"\x7f" in raw
            or (b"\xed" in raw and _RAW_SURROGATE.search(raw) is not None))


def clean_body(raw: bytes, body: Any) -> bool:
    """`clean_text` of a body parsed from `raw`, reading the raw text first."""
    return not may_be_unusable(raw) or clean_text(body)


def clean_text(value: Any) -> bool:
    """Whether every string in a JSON value (keys too) is text that can be stored and shown: no lone surrogate
    (JSON's "\\ud800" decodes to one), no control character but tab and line breaks."""
    if isinstance(value, str):
        return _UNUSABLE.search(value) is None
    if isinstance(value, dict):
        return all(clean_text(key) and clean_text(item) for key, item in value.items())
    if isinstance(value, list):
        return all(clean_text(item) for item in value)
    return True


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Always ok, or a supervisor would restart a bot that only waits (one
    standing by for the gateway among them, which says so)."""
    probe = request.app.get(ROLE_KEY)  # absent where only liveness is served (`check` answering for the bot)
    role = probe() if probe is not None else None
    return web.json_response({"ok": True, "gateway": role} if role else {"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the bot can serve (gateway connected, database answering), else 503 saying which not."""
    state = await request.app[READINESS_KEY]()
    failing = state.failing
    checks = {name: problem or state.notes.get(name, "ok") for name, problem in state.problems.items()}
    body = {"ready": not failing, "checks": checks, "failing": failing, "paused": state.paused}
    return web.json_response(body, status=503 if failing else 200)


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` bytes (chunked bodies announce no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        # read(n) returns what has arrived, up to n bytes: loop until the end of the body.
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


async def callback(request: web.Request) -> web.Response:
    response = await _take_callback(request)
    request.app[RELAY_KEY].metrics.callback("accepted" if response.status < 300 else "rejected")
    return response


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, for loopback clients or a bearer of METRICS_TOKEN."""
    token = request.app[METRICS_TOKEN_KEY]
    given = request.headers.get("Authorization", "")
    authorised = bool(token) and hmac.compare_digest(given.encode(errors="replace"), f"Bearer {token}".encode())
    if not authorised and not _is_loopback(request.remote):
        return web.json_response({"error": "forbidden"}, status=403)
    relay = request.app[RELAY_KEY]
    await relay.refresh_gauges()
    return web.Response(body=relay.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def _take_callback(request: web.Request) -> web.Response:
    expected = request.app[SECRET_KEY]
    given = request.match_info["secret"]
    if request.match_info["backend"] != request.app[RELAY_KEY].facts.name:
        return web.json_response({"error": "not found"}, status=404)
    # "replace": a path can decode to lone surrogates, which plain encode() would turn into a 500.
    if not hmac.compare_digest(given.encode(errors="replace"), expected.encode()):
        return web.json_response({"error": "not found"}, status=404)
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        raw = await read_capped(request, MAX_BODY)
    except (web.RequestPayloadError, ValueError, ConnectionError):
        # RequestPayloadError: a body that does not decode as its Content-Encoding (or chunking) says.
        return web.json_response({"error": "unreadable body"}, status=400)
    if raw is None:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: 64 KiB of "[" nests deeper than the parser goes; still just malformed input.
        return web.json_response({"error": "malformed JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object"}, status=400)
    if not clean_body(raw, body):
        # A lone surrogate or a control character cannot be stored or shown; no backend sends them.
        return web.json_response({"error": "unusable characters in the body"}, status=400)
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


_IMAGE_NAME = re.compile(r"[A-Za-z0-9_-]{43}\.(?:png|jpg|webp|gif)")


async def kept_image(request: web.Request) -> web.Response:
    """A kept image, for the backend that fetches it (useapi): while its job needs it, else 404 like any other."""
    name = request.match_info["name"]
    image = await served_image(request.app[RELAY_KEY].store, name) if _IMAGE_NAME.fullmatch(name) else None
    if image is None:
        return web.json_response({"error": "not found"}, status=404)
    return web.Response(body=image.data, content_type=image.content_type,
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


def make_app(relay: Relay, secret: str, metrics_token: str | None = None, *,
             readiness: ReadinessProbe, role: RoleProbe = lambda: None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_as_json])
    app[RELAY_KEY] = relay
    app[SECRET_KEY] = secret
    app[METRICS_TOKEN_KEY] = metrics_token or ""
    app[READINESS_KEY] = readiness
    app[ROLE_KEY] = role
    app.router.add_get("/healthz", healthz)
    app.router.add_get(READY_PATH, readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post(CALLBACK_PREFIX + "/{backend}/{secret}/{ref}", callback)
    app.router.add_get(IMAGES_PATH + "/{name}", kept_image)
    add_routes(app, relay.region.links, relay.region, max_prompt=relay.facts.prompt_limit)
    return app


class Listener:
    """Runs an app on HOST:PORT from setup_hook until close()."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log_class=access_logger_for(app.get(SECRET_KEY)),
                                     access_log=logging.getLogger("bot.access"), shutdown_timeout=SHUTDOWN_SECONDS)
        self.host = host
        self.port = port

    @property
    def app(self) -> web.Application:
        return self._runner.app

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
        """Stop accepting connections, let callbacks being handled finish, then close."""
        await self._runner.cleanup()
