"""The images members give, as the backend gets them: the kept bytes (mj-proxy), or a link to the bot's own
listener that stays valid until Midjourney has fetched it (useapi), never the member's expiring Discord link.

A kept image is served at `<PUBLIC_URL>/images/<token>.<ext>`: the token is 256 random bits, made when the
image was kept, so the path cannot be guessed; it answers while its job is waiting or running and for an hour
after it finished (Midjourney fetches an image prompt when the job starts), then 404, whoever asks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from bot.backends.base import ImagePrompt
from bot.jobs import KeptImage
from bot.store import Store
from bot.uploads import EXTENSIONS

PATH_PREFIX: Final = "/images"
SERVED_AFTER_FINISH: Final = 3600.0

NEEDS_PUBLIC_URL: Final = ("{label_start} fetches images by link, and this bot has no public address to serve them "
                           "from: an admin must set PUBLIC_URL. Nothing was sent.")


class ImageLinks:
    """Where the listener serves kept images (None: no PUBLIC_URL, so backends get the bytes only)."""

    def __init__(self, public_url: str | None) -> None:
        self.base = public_url.rstrip("/") if public_url else None

    def url(self, image: KeptImage) -> str | None:
        if self.base is None:
            return None
        return f"{self.base}{PATH_PREFIX}/{image.token}.{EXTENSIONS.get(image.content_type, 'png')}"

    def prompts(self, images: Sequence[KeptImage]) -> list[ImagePrompt]:
        """The kept images as the backend takes them: the bytes, and the link where there is one."""
        return [ImagePrompt(image.data, image.content_type, url=self.url(image)) for image in images]


def token_of(name: str) -> str:
    """The token in a served image's name (`<token>.<ext>`)."""
    return name.split(".", 1)[0]


async def served(store: Store, name: str, now: float | None = None) -> KeptImage | None:
    """The kept image a request for `name` may have: its job still needs it fetched; else None (a 404)."""
    image = await store.images.by_token(token_of(name))
    if image is None:
        return None
    job = await store.jobs.get(image.job_id)
    if job is None:
        return None
    moment = time.time() if now is None else now
    if job.is_final and (job.finished_at or 0.0) + SERVED_AFTER_FINISH < moment:
        return None
    return image


async def forget_old(store: Store, kept_days: int, now: float | None = None) -> tuple[int, int]:
    """Drop images of jobs finished over `kept_days` ago and editor links expired over a day ago (an expired
    link is kept a while so that its page says "expired" rather than "not valid"); how many of each went."""
    moment = time.time() if now is None else now
    images = await store.images.forget_finished_before(moment - kept_days * 86_400)
    links = await store.links.forget_expired(moment - 86_400)
    return images, links
