"""The simulator's result images: small real PNGs, one colour per job, marked SIMULATED."""

from __future__ import annotations

import hashlib
import io
import math
import random

from PIL import Image, ImageDraw

__all__ = ["render_png"]


def render_png(jobid: str, side: int, grid: bool, image_bytes: int | None) -> tuple[bytes, int]:
    """The PNG for a job and its side in pixels: a 2x2 grid or a single image, about image_bytes if given."""
    digest = hashlib.sha256(jobid.encode()).digest()
    colour = (digest[0], digest[1], digest[2])
    if image_bytes:
        # Random pixels do not compress, so the file ends up close to image_bytes.
        side = max(side, math.isqrt(image_bytes // 3) + 1)
        noise = random.Random(digest).randbytes(side * side * 3)
        image = Image.frombytes("RGB", (side, side), noise)
    else:
        image = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(image)
    ink = (255, 255, 255) if sum(colour) < 384 else (0, 0, 0)
    if grid:
        half = side // 2
        draw.line([(half, 0), (half, side)], fill=ink, width=2)
        draw.line([(0, half), (side, half)], fill=ink, width=2)
    draw.text((4, 4), "SIMULATED", fill=ink)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1 if image_bytes else 6)
    return out.getvalue(), side
