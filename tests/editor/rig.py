"""The editor on a real aiohttp listener on loopback, with hooks that record what the relay would be given.

The hooks stand for the relay (another engineer's part), not for the editor: every part of the editor runs
as in the bot: its routes, its page, MemoryLinks as its LinkStore.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from PIL import Image, ImageDraw

from bot.editor import EditorLink, EditorUnavailable, MemoryLinks, Original, add_routes, editor_url, new_link

SENT = "Sent: the new job appears in the channel."
PROMPT = 'a lighthouse on a cliff at dusk, "oil painting" & <warm light> --ar 3:2'


def landscape_png(width: int, height: int) -> bytes:
    """A small picture worth varying: a sky, a sun, hills and a lighthouse."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(40 + 200 * t), int(60 + 90 * t), int(140 - 40 * t)))
    draw.ellipse((width * 0.62, height * 0.18, width * 0.78, height * 0.42), fill=(255, 214, 120))
    draw.polygon([(0, height), (0, height * 0.7), (width * 0.3, height * 0.55), (width * 0.55, height * 0.72),
                  (width, height * 0.6), (width, height)], fill=(34, 70, 52))
    draw.rectangle((width * 0.2, height * 0.3, width * 0.25, height * 0.6), fill=(235, 235, 225))
    draw.polygon([(width * 0.19, height * 0.3), (width * 0.225, height * 0.24), (width * 0.26, height * 0.3)],
                 fill=(180, 40, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Clock:
    """A clock a test moves: the routes ask it the time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Sent:
    link: EditorLink
    prompt: str
    mask_png: bytes


@dataclass
class RecordingHooks:
    """EditorHooks as the relay will be seen from the editor: it serves one original and records each send."""

    original_image: Original
    sent: list[Sent] = field(default_factory=list)
    # Set by a test: every call of `original` waits at it (two racing submits both pass their checks).
    barrier: asyncio.Barrier | None = None
    gone: str | None = None  # `original` raises EditorUnavailable with this
    refuse: str | None = None  # `submit` raises EditorUnavailable with this
    crash: bool = False  # `submit` raises an unexpected error
    sent_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def original(self, link: EditorLink) -> Original:
        if self.gone is not None:
            raise EditorUnavailable(self.gone)
        if self.barrier is not None:
            await self.barrier.wait()
        return self.original_image

    async def submit(self, link: EditorLink, prompt: str, mask_png: bytes) -> str:
        if self.refuse is not None:
            raise EditorUnavailable(self.refuse)
        if self.crash:
            raise RuntimeError("the relay fell over")
        self.sent.append(Sent(link, prompt, mask_png))
        self.sent_event.set()
        return SENT


class EditorServer:
    """The editor's routes on a real listener (127.0.0.1, a free port), as the bot's webhook app will hold them."""

    def __init__(self, width: int = 600, height: int = 400) -> None:
        self.width, self.height = width, height
        self.links = MemoryLinks()
        self.clock = Clock()
        self.hooks = RecordingHooks(Original(landscape_png(width, height), "image/png", width, height, PROMPT))
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        # The default client_max_size (1 MiB) on purpose: the editor's bodies must not depend on it.
        app = web.Application()
        add_routes(app, self.links, self.hooks, clock=self.clock)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def link(self, *, job_id: str = "1727000000000123", member_id: int = 4242) -> tuple[EditorLink, str]:
        """A new link as the relay makes it on a click, and its URL."""
        link = new_link(job_id, member_id, self.clock())
        await self.links.create(link)
        return link, editor_url(self.base_url, link.token)
