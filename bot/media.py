"""A job's result file: fetched from the backend's link and made to fit the channel's upload limit, here only.

Re-encoding a large image (a 4x upscale is 4096x4096) takes a CPU for a second or more, so it runs in a worker
thread, a few at a time: the event loop (interactions, callbacks, the gateway's heartbeat) never waits on it.
A video (Midjourney's Animate and Extend) is posted as a video; over the channel's limit, its first frame is
shown instead, with a note saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from PIL import Image, UnidentifiedImageError

from bot.jobs import Media

log = logging.getLogger(__name__)

# A 4x upscale of a photo-like image is about 30 MiB as PNG; anything far beyond 64 MiB is not a result.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
DOWNLOAD_TIMEOUT = 60.0
FIT_WORKERS = 2
WORKER_NICENESS = 10
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif"})
VIDEO_EXTENSIONS = frozenset({"mp4", "webm", "mov"})


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


def filename_for(media: Media, job_id: int) -> str:
    """A short, safe file name for job `job_id`'s media: its own extension where it is one of its kind's, else
    the kind's usual one (a video is never saved as .png)."""
    name = media.filename or urlsplit(media.url).path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = media.kind
    if kind == "video":
        return f"job-{job_id}.{ext if ext in VIDEO_EXTENSIONS else 'mp4'}"
    if kind == "image":
        return f"job-{job_id}.{ext if ext in IMAGE_EXTENSIONS else 'png'}"
    return f"job-{job_id}.{ext or 'bin'}" if ext.isalnum() and len(ext) <= 5 else f"job-{job_id}.bin"


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


def first_frame(video: MediaFile) -> MediaFile:
    """The video's first frame as a PNG (CPU-bound: run in a thread)."""
    # Imported here: PyAV (FFmpeg) is tens of megabytes of resident memory, needed only for a video too large
    # for its channel.
    import av  # noqa: PLC0415

    try:
        with av.open(io.BytesIO(video.data), mode="r") as container:
            frame = next(container.decode(video=0))
            picture = frame.to_image()  # type: ignore[no-untyped-call]  # untyped in PyAV 18's stubs
    except (av.FFmpegError, StopIteration, ValueError, OSError) as exc:
        raise MediaError("the video's first frame could not be read") from exc
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return MediaFile(out.getvalue(), f"{video.filename.rsplit('.', 1)[0]}-first-frame.png")


def fit(image: MediaFile, limit: int) -> MediaFile:
    """`image` as is when it fits `limit` bytes, else re-encoded as JPEG small enough to fit (CPU-bound)."""
    if len(image.data) <= limit:
        return image
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            opened.load()
            # convert() of an image already RGB is a copy, made holding the GIL: skip it.
            picture = opened if opened.mode == "RGB" else opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError("the image is over the upload limit and could not be re-encoded") from exc
    stem = image.filename.rsplit(".", 1)[0]
    # Quality first (barely visible), then halve the pixel count until it fits.
    for _ in range(8):
        for quality in (90, 80, 70):
            out = io.BytesIO()
            # Not optimize=True: Pillow holds the GIL for that pass (160 ms for 4096x4096), which would stall the
            # event loop however many threads do the work; the file is a few percent larger without it.
            picture.save(out, format="JPEG", quality=quality)
            if out.tell() <= limit:
                log.info("re-encoded %s from %d to %d bytes to fit %d", image.filename, len(image.data),
                         out.tell(), limit)
                return MediaFile(out.getvalue(), f"{stem}.jpg")
        width, height = picture.size
        if width < 64 or height < 64:
            break
        picture = picture.resize((max(1, int(width / 1.414)), max(1, int(height / 1.414))))
    raise MediaError("the image could not be made small enough for this channel")


_FORMAT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def measure(data: bytes) -> tuple[str, int, int]:
    """An image's type and size in pixels, from its bytes (CPU-bound for a large one: run in a thread)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = _FORMAT_TYPES.get(image.format or "")
            if kind is None:
                raise MediaError(f"the image is a {image.format or 'unknown'} file, not one a browser shows")
            return kind, image.width, image.height
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"the image could not be read ({type(exc).__name__})") from exc


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _nice_worker() -> None:
    """Run this worker thread at a lower priority, so on a busy machine the event loop's thread goes first."""
    with contextlib.suppress(OSError, AttributeError):  # Linux takes a thread id here; elsewhere it is a no-op
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


class MediaPreparer:
    """Fetches a job's result and fits it to a limit, with the CPU-bound part in `workers` threads of its own
    (at a lower priority than the event loop's), never on the event loop."""

    def __init__(self, session: aiohttp.ClientSession, workers: int = FIT_WORKERS) -> None:
        self._session = session
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fit",
                                        initializer=_nice_worker)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, work: Callable[..., MediaFile], *args: Any) -> MediaFile:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def prepare(self, job_id: int, media: Media | None, limit: int) -> Prepared:
        if media is None:
            return Prepared()
        what = "video" if media.kind == "video" else "image" if media.kind == "image" else "file"
        try:
            data = await download(self._session, media.url)
        except MediaError as exc:
            log.warning("job %d: %s", job_id, exc)
            return Prepared(link=media.url, note=f"The {what} could not be fetched ({exc}); it is linked instead.")
        original = MediaFile(data, filename_for(media, job_id))
        if len(data) <= limit:
            return Prepared(file=original)
        if media.kind == "video":
            return await self._video_too_large(job_id, original, limit)
        if media.kind != "image":
            note = f"The result ({_mib(len(data))}) is larger than this channel accepts ({_mib(limit)})."
            return Prepared(link=media.url, note=note)
        try:
            return Prepared(file=await self._off_loop(fit, original, limit))
        except MediaError as exc:
            log.warning("job %d: %s; linking the image instead", job_id, exc)
            return Prepared(link=media.url)

    async def picture(self, url: str) -> tuple[bytes, str, int, int]:
        """An image's bytes, type and size in pixels (the region editor's original; MediaError when it is not an
        image that can be read)."""
        data = await download(self._session, url)
        kind, width, height = await asyncio.get_running_loop().run_in_executor(self._pool, measure, data)
        return data, kind, width, height

    async def _video_too_large(self, job_id: int, video: MediaFile, limit: int) -> Prepared:
        """A video over the channel's limit: its first frame, made to fit, with a note (never a dead link)."""
        note = (f"The video is too large for this channel ({_mib(len(video.data))}; the limit here is "
                f"{_mib(limit)}): its first frame is shown instead.")
        try:
            frame = await self._off_loop(first_frame, video)
            return Prepared(file=await self._off_loop(fit, frame, limit), note=note)
        except MediaError as exc:
            log.warning("job %d: %s", job_id, exc)
            return Prepared(note=f"The video is too large for this channel ({_mib(len(video.data))}) and its first "
                                 "frame could not be read.")
