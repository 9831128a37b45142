"""The simulator's results: small real PNGs, one colour per job, marked SIMULATED; and short real MP4s."""

from __future__ import annotations

import hashlib
import io
import math
import random

import av
from PIL import Image, ImageDraw

from bot.backends.simkit import mark, png_bytes, square

__all__ = ["render_mp4", "render_png"]


def render_mp4(jobid: str, side: int = 128, frames: int = 12, video_bytes: int | None = None) -> bytes:
    """A one-second MP4 (MPEG-4 part 2, which every FFmpeg build encodes) whose colour drifts frame by frame;
    padded to about `video_bytes` with a `free` box, which players skip, when given."""
    digest = hashlib.sha256(jobid.encode()).digest()
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=frames)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        for index in range(frames):
            picture = Image.new("RGB", (side, side), (digest[0], (digest[1] + 16 * index) % 256, digest[2]))
            ImageDraw.Draw(picture).text((4, 4), "SIMULATED", fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]  # untyped in the stubs
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = out.getvalue()
    if video_bytes and video_bytes > len(data) + 8:
        padding = video_bytes - len(data)
        data += padding.to_bytes(4, "big") + b"free" + bytes(padding - 8)
    return data


def render_png(jobid: str, side: int, grid: bool, image_bytes: int | None) -> tuple[bytes, int]:
    """The PNG for a job and its side in pixels: a 2x2 grid or a single image, about image_bytes if given."""
    if image_bytes:
        # Random pixels do not compress, so the file ends up close to image_bytes.
        side = max(side, math.isqrt(image_bytes // 3) + 1)
        noise = random.Random(hashlib.sha256(jobid.encode()).digest()).randbytes(side * side * 3)
        image = Image.frombytes("RGB", (side, side), noise)
    else:
        image = square(jobid, side)
    mark(image, jobid, grid=grid)
    return png_bytes(image, compress_level=1 if image_bytes else 6), side
