"""The simulator's files: small real PNGs (one colour per task, marked SIMULATED) and a stand-in MP4."""

from __future__ import annotations

import hashlib
import io
import struct

from PIL import Image, ImageDraw, ImageFilter

__all__ = ["render_mp4", "render_png"]


def render_png(task_id: str, side: int, *, grid: bool, progress: int | None = None) -> bytes:
    """The PNG of a task: a 2x2 grid or a single image; a blurred, labelled one for a progress preview."""
    digest = hashlib.sha256(task_id.encode()).digest()
    colour = (digest[0], digest[1], digest[2])
    image = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(image)
    ink = (255, 255, 255) if sum(colour) < 384 else (0, 0, 0)
    if grid:
        half = side // 2
        draw.line([(half, 0), (half, side)], fill=ink, width=2)
        draw.line([(0, half), (side, half)], fill=ink, width=2)
    draw.text((4, 4), "SIMULATED", fill=ink)
    if progress is not None:
        # Midjourney's previews are blurry until the job is done.
        image = image.filter(ImageFilter.GaussianBlur(2))
        ImageDraw.Draw(image).text((4, side - 14), f"{progress}%", fill=ink)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def render_mp4(task_id: str) -> bytes:
    """An MP4's opening boxes (ftyp, and a free box naming the task): a file players recognise, not a video."""
    brand = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 0x200, b"isom", b"mp41")
    note = f"SIMULATED video of mj-proxy task {task_id}".encode()
    return brand + struct.pack(">I4s", 8 + len(note), b"free") + note
