"""The simulator's files: small real PNGs (one colour per task, marked SIMULATED) and a stand-in MP4."""

from __future__ import annotations

import struct

from PIL import ImageDraw, ImageFilter

from bot.backends.simkit import mark, png_bytes, square

__all__ = ["render_mp4", "render_png"]


def render_png(task_id: str, side: int, *, grid: bool, progress: int | None = None) -> bytes:
    """The PNG of a task: a 2x2 grid or a single image; a blurred, labelled one for a progress preview."""
    image = square(task_id, side)
    ink = mark(image, task_id, grid=grid)
    if progress is not None:
        # Midjourney's previews are blurry until the job is done.
        image = image.filter(ImageFilter.GaussianBlur(2))
        ImageDraw.Draw(image).text((4, side - 14), f"{progress}%", fill=ink)
    return png_bytes(image)


def render_mp4(task_id: str) -> bytes:
    """An MP4's opening boxes (ftyp, and a free box naming the task): a file players recognise, not a video."""
    brand = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 0x200, b"isom", b"mp41")
    note = f"SIMULATED video of mj-proxy task {task_id}".encode()
    return brand + struct.pack(">I4s", 8 + len(note), b"free") + note
