"""A job's result file: fetched from the backend's link and made to fit the channel's upload limit, here only.

Re-encoding a large image takes a CPU for a second or more, so it runs in a worker thread, a few at a time:
the event loop (interactions, callbacks, the gateway's heartbeat) never waits on it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from PIL import Image, UnidentifiedImageError

from bot.jobs import Media

log = logging.getLogger(__name__)

# Midjourney's largest upscales are a few MiB; anything far beyond that is not an image we asked for.
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30.0
FIT_WORKERS = 2


class MediaError(Exception):
    """The file could not be fetched or made to fit; the message is fit to show a user."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    """Bytes ready to upload, with the name Discord will show."""

    data: bytes
    filename: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a result card gets: the file to upload, else the link to show, and a note on what happened."""

    file: MediaFile | None = None
    link: str | None = None
    note: str | None = None


def filename_for(url: str, job_id: int) -> str:
    """A short, safe file name for job `job_id`, keeping the extension of `url`."""
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else "png"
    if ext not in {"png", "jpg", "jpeg", "webp", "gif"}:
        ext = "png"
    return f"job-{job_id}.{ext}"


async def download(session: aiohttp.ClientSession, url: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES,
                   timeout: float = DOWNLOAD_TIMEOUT) -> bytes:
    """Fetch `url` (no credentials are sent: these are CDN links), refusing bodies over `max_bytes`."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise MediaError("the image link is not http(s)")
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise MediaError(f"the image host answered HTTP {response.status}")
            if (response.content_length or 0) > max_bytes:
                raise MediaError("the image is larger than the relay accepts")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaError("the image is larger than the relay accepts")
                chunks.append(chunk)
            return b"".join(chunks)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise MediaError(f"the image could not be downloaded ({type(exc).__name__})") from exc


def fit(image: MediaFile, limit: int) -> MediaFile:
    """`image` as is when it fits `limit` bytes, else re-encoded as JPEG small enough to fit (CPU-bound)."""
    if len(image.data) <= limit:
        return image
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError("the image is over the upload limit and could not be re-encoded") from exc
    stem = image.filename.rsplit(".", 1)[0]
    # Quality first (barely visible), then halve the pixel count until it fits.
    for _ in range(8):
        for quality in (90, 80, 70):
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                log.info("re-encoded %s from %d to %d bytes to fit %d", image.filename, len(image.data),
                         out.tell(), limit)
                return MediaFile(out.getvalue(), f"{stem}.jpg")
        width, height = picture.size
        if width < 64 or height < 64:
            break
        picture = picture.resize((max(1, int(width / 1.414)), max(1, int(height / 1.414))))
    raise MediaError("the image could not be made small enough for this channel")


class MediaPreparer:
    """Fetches a job's result and fits it to a limit, with the CPU-bound part off the event loop."""

    def __init__(self, session: aiohttp.ClientSession, workers: int = FIT_WORKERS) -> None:
        self._session = session
        self._fitting = asyncio.Semaphore(workers)

    async def prepare(self, job_id: int, media: Media | None, limit: int) -> Prepared:
        if media is None:
            return Prepared()
        try:
            data = await download(self._session, media.url)
        except MediaError as exc:
            log.warning("job %d: %s", job_id, exc)
            return Prepared(link=media.url, note=f"The image could not be fetched ({exc}); it is linked instead.")
        original = MediaFile(data, filename_for(media.url, job_id))
        if len(data) <= limit:
            return Prepared(file=original)
        try:
            async with self._fitting:
                return Prepared(file=await asyncio.to_thread(fit, original, limit))
        except MediaError as exc:
            log.warning("job %d: %s; linking the image instead", job_id, exc)
            return Prepared(link=media.url)
