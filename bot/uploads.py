"""The images members give (image prompts, a blend's, the one to describe): what is accepted, checked before
anything is sent. Pure rules; the cogs read the bytes and the relay keeps them.

An image is accepted when it is one of the types Midjourney reads (PNG, JPEG, WebP, GIF), at most 10 MiB,
and its bytes say so: the type Discord reports comes from the file's name, so the first bytes decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_UPLOAD_BYTES: Final = 10 * 1024 * 1024
# The types Midjourney takes as image prompts, and the name each is served under (Midjourney reads a link's
# extension to tell an image prompt from text).
EXTENSIONS: Final = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
TYPE_NAMES: Final = "PNG, JPEG, WebP or GIF"


@dataclass(frozen=True, slots=True)
class Upload:
    """An image a member gave, read and checked: its bytes, its type (from the bytes) and its name."""

    data: bytes
    content_type: str
    name: str


def sniffed_type(data: bytes) -> str | None:
    """The image type the first bytes announce, among the ones Midjourney reads; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def size_words(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KiB"


def refusal_before_reading(name: str, content_type: str | None, size: int) -> str | None:
    """Why an attachment is refused from what Discord says of it, before its bytes are fetched; None to read it."""
    if size > MAX_UPLOAD_BYTES:
        return (f"`{name}` is {size_words(size)}; images can be at most {size_words(MAX_UPLOAD_BYTES)}. "
                "Nothing was sent.")
    if content_type is not None and not content_type.split(";")[0].strip().lower().startswith("image/"):
        return f"`{name}` is not an image ({content_type}); give a {TYPE_NAMES} file. Nothing was sent."
    return None


def checked(name: str, data: bytes) -> Upload | str:
    """The image as an `Upload`, or why it is refused (a sentence for the member)."""
    if len(data) > MAX_UPLOAD_BYTES:
        return (f"`{name}` is {size_words(len(data))}; images can be at most {size_words(MAX_UPLOAD_BYTES)}. "
                "Nothing was sent.")
    kind = sniffed_type(data)
    if kind is None:
        return (f"`{name}` is not a {TYPE_NAMES} image (Midjourney reads only those). Nothing was sent."
                if data else f"`{name}` is empty. Nothing was sent.")
    return Upload(data, kind, name)
