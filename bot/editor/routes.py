"""The editor's routes on the bot's listener: the page, its image, and the submit that spends the link.

- `GET /editor/{token}`: the editor (200, text/html), or a page with the refusal's sentence (403 a token
  that is not a link's, 410 a link expired or used, 410 a job whose image is gone). Spends nothing, so a
  link preview fetching it is harmless; HEAD is answered alike.
- `GET /editor/{token}/image`: the original's bytes with their image type (200), or the sentence as
  text/plain with the same statuses as the page.
- `POST /editor/{token}` with `Content-Type: application/json` and the body
  `{"prompt": str (optional: missing or empty is the original's prompt), "mask": "data:image/png;base64,..."}`
  answers JSON `{"ok": bool, "message": str, "final": bool}`: `message` is the sentence the page shows,
  `final` says the link can send nothing more. 200 sent (the hook's sentence); 400 a body that cannot be sent
  (not JSON, no mask, a mask not the original's shape or with nothing marked, a prompt too long), 413 a body
  over `MAX_BODY`, 415 not JSON, each with `final` false and the link unspent; 403 not a link, 410 expired
  or used (a replay, or the loser of two racing submits), 502 the hook could not send it (the link is spent
  then), 500 the hook failed unexpectedly: all with `final` true. Bad input never gets a 5xx.

The order of a submit: the link is checked, the body read (bounded) and checked, and only then spent,
atomically; the hook is called only by the one request that spent it. So a bad body costs the member
nothing, and a replay, even racing the first submit, sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from bot.editor.hooks import IMAGE_TYPES, EditorHooks, EditorUnavailable, Original
from bot.editor.links import EditorLink, LinkStore, Refusal, check, looks_like_token
from bot.editor.mask import MAX_MASK_BYTES, PREFIX
from bot.editor.page import editor_page, new_nonce, page_headers, refusal_page
from bot.editor.submission import DEFAULT_MAX_PROMPT, BadSubmission, parse_submission

__all__ = ["MAX_BODY", "NEEDS_PUBLIC_URL", "PATH_PREFIX", "add_routes", "editor_url", "masked_editor_path"]

log = logging.getLogger(__name__)

PATH_PREFIX = "/editor"
# The largest mask as base64 in its data URL, and room for the prompt (4000 characters, JSON-escaped).
MAX_BODY = (MAX_MASK_BYTES + 2) // 3 * 4 + len(PREFIX) + 64 * 1024
STATUS = {Refusal.INVALID: 403, Refusal.EXPIRED: 410, Refusal.USED: 410}
UNEXPECTED_PAGE = "The bot could not show the editor just now. Try again in a minute."
UNEXPECTED_SUBMIT = ("The bot could not tell whether the region was sent. Look in the channel, and press "
                     "Vary (Region) again if no new job appears.")
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


# The click's private reply when the listener has no public address: a link to it could not be opened.
NEEDS_PUBLIC_URL = ("Vary (Region) opens a region editor on the bot's own web address, and this bot has none: an "
                    "admin must set PUBLIC_URL. Nothing was sent.")


def editor_url(public_url: str, token: str) -> str:
    """The link a member is given: the listener's public base URL (PUBLIC_URL) and the token."""
    return f"{public_url.rstrip('/')}{PATH_PREFIX}/{token}"


def masked_editor_path(path: str) -> str:
    """`path` fit to log: an editor path's token replaced by ***, since the token is the member's key."""
    parts = path.split("/")
    if len(parts) > 2 and "/" + parts[1] == PATH_PREFIX:
        parts[2] = "***"
    return "/".join(parts)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _json(status: int, message: str, *, ok: bool = False, final: bool = True) -> web.Response:
    return web.json_response({"ok": ok, "message": message, "final": final}, status=status, headers=_NO_STORE)


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` bytes (a chunked body announces no length).

    Read from the stream rather than with request.read(), so the app's client_max_size does not apply.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


class _Routes:
    def __init__(self, links: LinkStore, hooks: EditorHooks, clock: Callable[[], datetime],
                 max_prompt: int) -> None:
        self.links = links
        self.hooks = hooks
        self.clock = clock
        self.max_prompt = max_prompt

    async def _link(self, token: str) -> EditorLink | Refusal:
        """The usable link with this token, or why there is none."""
        if not looks_like_token(token):
            return Refusal.INVALID
        link = await self.links.get(token)
        refusal = check(link, self.clock())
        if refusal is Refusal.INVALID:
            log.info("editor: a token that is no link's was tried")
        if link is None or refusal is not None:
            return refusal or Refusal.INVALID
        return link

    @staticmethod
    def _refused_page(sentence: str, status: int) -> web.Response:
        nonce = new_nonce()
        return web.Response(text=refusal_page(sentence, nonce=nonce), status=status, content_type="text/html",
                            charset="utf-8", headers=page_headers(nonce, script=False))

    async def _original(self, link: EditorLink) -> Original | str:
        """The link's original, or the sentence to answer (410) when the relay has none."""
        try:
            return await self.hooks.original(link)
        except EditorUnavailable as exc:
            return exc.sentence

    async def page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        link = await self._link(token)
        if isinstance(link, Refusal):
            return self._refused_page(link.sentence, STATUS[link])
        try:
            original = await self._original(link)
        except Exception:
            log.exception("editor: the original of job %s could not be read", link.job_id)
            return self._refused_page(UNEXPECTED_PAGE, 500)
        if isinstance(original, str):
            return self._refused_page(original, 410)
        nonce = new_nonce()
        body = editor_page(image_url=f"{token}/image", width=original.width, height=original.height,
                           prompt=original.prompt, max_prompt=self.max_prompt, nonce=nonce)
        return web.Response(text=body, content_type="text/html", charset="utf-8",
                            headers=page_headers(nonce, script=True))

    async def image(self, request: web.Request) -> web.Response:
        link = await self._link(request.match_info["token"])
        if isinstance(link, Refusal):
            return web.Response(text=link.sentence, status=STATUS[link], headers=_NO_STORE)
        try:
            original = await self._original(link)
        except Exception:
            log.exception("editor: the original of job %s could not be read", link.job_id)
            return web.Response(text=UNEXPECTED_PAGE, status=500, headers=_NO_STORE)
        if isinstance(original, str):
            return web.Response(text=original, status=410, headers=_NO_STORE)
        # Served from the listener's own origin: only a type a browser shows as an image, never one it runs.
        content_type = original.content_type if original.content_type in IMAGE_TYPES else "application/octet-stream"
        headers = {**_NO_STORE, "Content-Type": content_type,
                   "Content-Security-Policy": "default-src 'none'; sandbox"}
        return web.Response(body=original.data, headers=headers)

    async def submit(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        link = await self._link(token)
        if isinstance(link, Refusal):
            return _json(STATUS[link], link.sentence)
        if request.content_type != "application/json":
            return _json(415, "The request must be JSON (Content-Type: application/json).", final=False)
        too_large = f"The request is larger than {MAX_BODY // (1024 * 1024)} MiB: the mask cannot be that large."
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _json(413, too_large, final=False)
        body = await _read_capped(request, MAX_BODY)
        if body is None:
            return _json(413, too_large, final=False)
        try:
            original = await self._original(link)
        except Exception:
            log.exception("editor: the original of job %s could not be read", link.job_id)
            return _json(500, UNEXPECTED_PAGE, final=False)
        if isinstance(original, str):
            return _json(410, original)
        try:
            # Decoding a large mask takes a while: off the event loop.
            submission = await asyncio.to_thread(parse_submission, body, width=original.width,
                                                 height=original.height, original_prompt=original.prompt,
                                                 max_prompt=self.max_prompt)
        except BadSubmission as exc:
            return _json(400, str(exc), final=False)
        now = self.clock()
        if not await self.links.spend(token, now):
            # Spent or expired since it was read: say which, as the page would now.
            refusal = check(await self.links.get(token), now) or Refusal.USED
            return _json(STATUS[refusal], refusal.sentence)
        try:
            sentence = await self.hooks.submit(replace(link, used_at=now), submission.prompt,
                                               submission.mask_png)
        except EditorUnavailable as exc:
            return _json(502, exc.sentence)
        except Exception:
            log.exception("editor: sending the region of job %s failed", link.job_id)
            return _json(500, UNEXPECTED_SUBMIT)
        log.info("editor: member %s sent a region for job %s", link.member_id, link.job_id)
        return _json(200, sentence, ok=True)


def add_routes(app: web.Application, links: LinkStore, hooks: EditorHooks, *,
               clock: Callable[[], datetime] = _utc_now, max_prompt: int = DEFAULT_MAX_PROMPT) -> None:
    """Add the editor's routes (module docstring) under /editor to `app`; `clock` gives aware UTC times."""
    routes = _Routes(links, hooks, clock, max_prompt)
    app.router.add_get(PATH_PREFIX + "/{token}", routes.page)
    app.router.add_get(PATH_PREFIX + "/{token}/image", routes.image)
    app.router.add_post(PATH_PREFIX + "/{token}", routes.submit)
