"""What a simulated job's body says: its ids, Midjourney's message text, the buttons and image it offers."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from bot.backends.useapi.facts import (
    ARROWS,
    CUSTOM_ZOOM,
    EXTEND_BUTTONS,
    GRID_BUTTONS,
    ONE_SHOT_BUTTONS,
    UPSCALE_BUTTONS,
)

MENTION = "<@1308>"
DISCORD_EPOCH_MS = 1_420_070_400_000
_PANS = dict(zip(ARROWS, ("Left", "Right", "Up", "Down"), strict=True))


class IdMaker:
    """Jobids and Discord snowflakes shaped as useapi's, never the same twice from one maker."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._seq = 0

    def jobid(self, channel: str) -> str:
        """A new jobid for a job on this channel."""
        # Millisecond stamps as useapi uses, bumped on a tie so that two jobs never share an id.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        stamp = datetime.fromtimestamp(self._last_ms / 1000, UTC).strftime("%Y%m%d%H%M%S")
        return f"job:{stamp}{self._last_ms % 1000:03d}-user:1308-channel:{channel}-bot:midjourney"

    def snowflake(self) -> str:
        """A new Discord id (message or attachment)."""
        self._seq += 1
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) + (self._seq & 0x3FFFFF))


def now_iso() -> str:
    """Now as useapi writes `created` and `updated`: UTC, milliseconds, Z."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def mask(secret: Any) -> str:
    """The `discord` token as useapi shows it: first and last three characters."""
    if isinstance(secret, str) and len(secret) >= 6:
        return f"{secret[:3]}…{secret[-3:]}"
    return "abc…xyz"


def is_single_image(button: str | None) -> bool:
    """Whether the job this button makes shows one image rather than a grid."""
    return button is not None and (button in ONE_SHOT_BUTTONS or "Upscale (" in button)


def is_video(button: str | None) -> bool:
    """Whether the job this button makes is a video (Midjourney's Animate, and Extend of a video)."""
    return button is not None and button.startswith(("Animate (", "Extend ("))


def next_buttons(button: str | None) -> list[str]:
    """The buttons under the result of a job made by this button (None: an imagine)."""
    if is_video(button):
        return list(EXTEND_BUTTONS)
    if button in ONE_SHOT_BUTTONS:
        return list(UPSCALE_BUTTONS)
    if button is not None and "Upscale (" in button:
        kind = button[button.index("(") :]
        return [f"Redo Upscale {kind}", *UPSCALE_BUTTONS[2:]]
    return list(GRID_BUTTONS)


def label(button: str | None) -> str:
    """What Midjourney writes between the prompt and the mention for a job made by this button."""
    if button is None or button in ("🔄", "Remaster"):
        return ""
    if button in ONE_SHOT_BUTTONS:
        return f"Image #{button[1]} "
    if (button.startswith("V") and len(button) == 2) or button == "Make Variations":
        return "Variations by "
    if button.startswith("Vary ("):
        return f"Variations {button[5:]} by "
    if "Upscale (" in button:
        return f"Upscaled {button[button.index('(') :]} by "
    if button.startswith("Zoom Out") or button == CUSTOM_ZOOM:
        return "Zoom Out by "
    if button in _PANS:
        return f"Pan {_PANS[button]} by "
    return f"{button} by "


def waiting_content(prompt: str) -> str:
    """Midjourney's message for a job that has not started drawing."""
    return f"**{prompt}** - {MENTION} (Waiting to start)"


def progress_content(prompt: str, button: str | None, percent: int) -> str:
    """Midjourney's message while a job draws: the percentage appears only here."""
    return f"**{prompt}** - {label(button)}{MENTION} ({percent}%) (fast)"


def final_content(prompt: str, button: str | None) -> str:
    """Midjourney's message under a finished result; an upscale of one grid image names no speed."""
    suffix = "" if button in ONE_SHOT_BUTTONS else " (fast)"
    return f"**{prompt}** - {label(button)}{MENTION}{suffix}"


def file_name(jobid: str, extension: str = "png") -> str:
    """The name the result file of a job is served under."""
    return f"{hashlib.sha256(jobid.encode()).hexdigest()[:24]}.{extension}"


def attachment(root: str, name: str, size: int, side: int, attachment_id: str, *,
               content_type: str = "image/png") -> dict[str, Any]:
    """A Discord attachment for a served file, with signed-looking CDN query parameters."""
    now = int(time.time())
    expires = now + 24 * 3600
    signature = hashlib.sha256(f"{name}{expires}".encode()).hexdigest()
    query = f"?ex={expires:x}&is={now:x}&hm={signature}&"
    return {
        "id": attachment_id,
        "url": f"{root}/attachments/{name}{query}",
        "proxy_url": f"{root}/media/attachments/{name}{query}",
        "filename": f"simulated_{name}",
        "content_type": content_type,
        "size": size,
        "width": side,
        "height": side,
    }
