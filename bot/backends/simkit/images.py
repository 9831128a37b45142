"""The made-up images both simulators draw: a square of one colour per job (from a hash of its id), split into
a 2x2 grid or not, marked SIMULATED so that no one mistakes it for Midjourney's, written as PNG.

Sizes, previews, padding and videos are each backend's own; this is the picture they all start from.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw

__all__ = ["Colour", "colour_of", "mark", "png_bytes", "square"]

Colour = tuple[int, int, int]


def colour_of(key: str) -> Colour:
    """The colour of a job: the first bytes of a hash of its id, so each job looks different and always the same."""
    digest = hashlib.sha256(key.encode()).digest()
    return digest[0], digest[1], digest[2]


def square(key: str, side: int) -> Image.Image:
    """A side x side image in the job's colour."""
    return Image.new("RGB", (side, side), colour_of(key))


def mark(image: Image.Image, key: str, *, grid: bool) -> Colour:
    """Draw the grid's lines (when grid) and the SIMULATED mark on image, in the ink that stands out from the
    job's colour; return that ink, for anything drawn later."""
    colour = colour_of(key)
    side = image.width
    draw = ImageDraw.Draw(image)
    ink = (255, 255, 255) if sum(colour) < 384 else (0, 0, 0)
    if grid:
        half = side // 2
        draw.line([(half, 0), (half, side)], fill=ink, width=2)
        draw.line([(0, half), (side, half)], fill=ink, width=2)
    draw.text((4, 4), "SIMULATED", fill=ink)
    return ink


def png_bytes(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """The image as a PNG file."""
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=compress_level)
    return out.getvalue()
