"""What a simulated task's body says: its id, its fields as trueai writes them, and the buttons it offers.

Field by field after trueai-org/midjourney-proxy at ed32197: src/Midjourney.Base/Models/TaskInfo.cs (the task,
as System.Text.Json writes it: camelCase, enums by name, nulls kept), Models/CustomComponentModel.cs (buttons),
Controllers/SubmitController.cs (NewTask, the action a customId makes).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from typing import Any

from bot.backends.mjproxy.facts import NOT_START, SPEED_MODES

__all__ = [
    "IdMaker",
    "action_of",
    "blend_prompt",
    "buttons_after",
    "described_text",
    "is_single_image",
    "job_hash",
    "mode_of",
    "new_task",
    "now_ms",
    "seed_of",
]

INSTANCE_ID = "1280000000000000001"  # the simulated Discord account's channel: TaskInfo.InstanceId
_PANS = ("left", "right", "up", "down")
_ARROWS = ("⬅️", "➡️", "⬆️", "⬇️")


def now_ms() -> int:
    """Now in epoch milliseconds, as submitTime, startTime and finishTime are written."""
    return int(time.time() * 1000)


class IdMaker:
    """Task ids shaped as trueai's: epoch milliseconds and three random digits (SubmitController.NewTask)."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self._last_ms = 0

    def task_id(self) -> str:
        # Bumped on a tie so that two tasks of one millisecond still differ before the random digits.
        self._last_ms = max(now_ms(), self._last_ms + 1)
        return f"{self._last_ms}{self._random.randrange(1000):03d}"

    def nonce(self) -> str:
        return str(self._random.randrange(10**18, 10**19))


def job_hash(task_id: str) -> str:
    """Midjourney's job UUID for a task (properties.messageHash): every customId of its buttons carries it."""
    return str(uuid.UUID(bytes=hashlib.sha256(f"midjourney-job:{task_id}".encode()).digest()[:16]))


def mode_of(path: str) -> str | None:
    """The speed a request's path asks for (SimpleAuthMiddleware: /mj-fast, /mj-relax, /mj-turbo), by name."""
    return next((mode for speed, mode in SPEED_MODES.items() if path.startswith(f"/mj-{speed}/")), None)


def described_text(task_id: str) -> str:
    """Midjourney's describe text (its embed, trueai's finalPrompt): four numbered prompts, marked simulated."""
    digest = hashlib.sha256(f"describe:{task_id}".encode()).digest()
    subject = ("a lighthouse on a cliff", "a cat on a windowsill", "a market street at noon")[digest[0] % 3]
    return "\n\n".join(f"{n}\ufe0f\u20e3 {subject}, simulated description {n}, soft light --ar 1:1"
                       for n in range(1, 5))


def seed_of(task_id: str) -> str:
    """The seed a simulated task was drawn with (TaskInfo.Seed): fixed per task, within 0..4294967295."""
    return str(int.from_bytes(hashlib.sha256(f"seed:{task_id}".encode()).digest()[:4], "big"))


def blend_prompt(images: list[str], dimensions: str) -> str:
    """How Midjourney writes a blend's prompt: a short link per image, then the shape (none for a square)."""
    links = " ".join(f"<https://s.mj.run/{hashlib.sha256(image.encode()).hexdigest()[:11]}>" for image in images)
    return links + {"PORTRAIT": " --ar 2:3", "LANDSCAPE": " --ar 3:2"}.get(dimensions, "")


def _button(custom_id: str, *, label: str = "", emoji: str = "", style: int = 2) -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "style": style, "type": 2}


def grid_buttons(hash_: str) -> list[dict[str, Any]]:
    """A finished grid's buttons in Discord's order: U1-U4, 🔄, V1-V4."""
    return [
        *(_button(f"MJ::JOB::upsample::{i}::{hash_}", label=f"U{i}") for i in range(1, 5)),
        _button(f"MJ::JOB::reroll::0::{hash_}::SOLO", emoji="🔄", style=1),
        *(_button(f"MJ::JOB::variation::{i}::{hash_}", label=f"V{i}") for i in range(1, 5)),
    ]


def upscale_buttons(hash_: str, *, upscales: bool = True) -> list[dict[str, Any]]:
    """A finished upscale's buttons (CustomComponentModel: upscale, vary, zoom, pan, animate), v7's set."""
    upscale = [
        _button(f"MJ::JOB::upsample_v7_2x_subtle::1::{hash_}::SOLO", label="Upscale (Subtle)", emoji="upscale_1"),
        _button(f"MJ::JOB::upsample_v7_2x_creative::1::{hash_}::SOLO", label="Upscale (Creative)", emoji="upscale_1"),
    ]
    return [
        *(upscale if upscales else []),
        _button(f"MJ::JOB::low_variation::1::{hash_}::SOLO", label="Vary (Subtle)", emoji="🪄"),
        _button(f"MJ::JOB::high_variation::1::{hash_}::SOLO", label="Vary (Strong)", emoji="🪄"),
        _button(f"MJ::Inpaint::1::{hash_}::SOLO", label="Vary (Region)", emoji="🖌️"),
        _button(f"MJ::Outpaint::50::1::{hash_}::SOLO", label="Zoom Out 2x", emoji="🔍"),
        _button(f"MJ::Outpaint::75::1::{hash_}::SOLO", label="Zoom Out 1.5x", emoji="🔍"),
        _button(f"MJ::CustomZoom::1::{hash_}", label="Custom Zoom", emoji="🔍"),
        *(_button(f"MJ::JOB::pan_{way}::1::{hash_}::SOLO", emoji=arrow) for way, arrow in zip(_PANS, _ARROWS,
                                                                                               strict=True)),
        _button(f"MJ::JOB::animate_high::1::{hash_}::SOLO", label="Animate (High motion)", emoji="🎞️"),
        _button(f"MJ::JOB::animate_low::1::{hash_}::SOLO", label="Animate (Low motion)", emoji="🎞️"),
    ]


def action_of(custom_id: str, parent_action: str | None) -> str | None:
    """The TaskAction a press of this customId makes (SubmitController.Action); None: "未知的 Action 类型"."""
    prefixes = (
        ("MJ::JOB::upsample::", "UPSCALE"),
        ("MJ::JOB::variation::", "VARIATION"),
        ("MJ::JOB::high_variation::", "VARIATION"),
        ("MJ::JOB::low_variation::", "VARIATION"),
        ("MJ::Outpaint::", "ZOOM"),
        ("MJ::JOB::pan_", "PAN"),
        ("MJ::JOB::upsample_", "UPSCALE_HD"),
        ("MJ::CustomZoom::", "ZOOM"),
        ("MJ::Inpaint::", "VARIATION"),
        ("MJ::JOB::animate_", "VIDEO"),
    )
    if custom_id.startswith("MJ::JOB::reroll::"):
        # A reroll makes what its parent was; rerolling an upscale makes a new grid.
        return "IMAGINE" if parent_action in (None, "UPSCALE") else parent_action
    return next((action for prefix, action in prefixes if custom_id.startswith(prefix)), None)


def is_single_image(action: str | None) -> bool:
    """Whether a task of this action shows one image rather than a 2x2 grid."""
    return action in ("UPSCALE", "UPSCALE_HD", "VIDEO")


def buttons_after(action: str | None, hash_: str) -> list[dict[str, Any]]:
    """The buttons under a finished task of this action (a video offers none here, nor a describe: trueai's
    PicReader buttons, one per prompt, are not simulated)."""
    if action == "UPSCALE":
        return upscale_buttons(hash_)
    if action == "UPSCALE_HD":
        return upscale_buttons(hash_, upscales=False)
    if action in ("VIDEO", "DESCRIBE"):
        return []
    return grid_buttons(hash_)


def new_task(task_id: str, *, action: str, prompt: str, state: str | None, notify_hook: str | None, nonce: str,
             parent: dict[str, Any] | None = None, custom_id: str | None = None,
             mode: str | None = None) -> dict[str, Any]:
    """A task as NewTask files it (NOT_START), with every field TaskInfo serialises; `mode` the speed its path
    asked for (FAST, RELAX, TURBO), kept as its requestMode and mode."""
    properties: dict[str, Any] = {"notifyHook": notify_hook, "nonce": nonce, "discordInstanceId": INSTANCE_ID,
                                  "discordChannelId": INSTANCE_ID}
    if custom_id is not None:
        properties["custom_id"] = custom_id
    description = f"/imagine {prompt}" if action == "IMAGINE" and parent is None else ""
    return {
        "id": task_id, "parentId": parent["id"] if parent else None, "botType": "MID_JOURNEY", "realBotType": None,
        "userId": None, "isWhite": False, "nonce": nonce, "interactionMetadataId": None, "messageId": None,
        "remixModalMessageId": None, "remixAutoSubmit": False, "remixModaling": False, "instanceId": INSTANCE_ID,
        "subInstanceId": None, "messageIds": [], "action": action, "status": NOT_START, "isCompleted": False,
        "prompt": prompt, "promptEn": prompt, "promptFull": None, "description": description, "language": None,
        "state": state, "submitTime": now_ms(), "startTime": None, "finishTime": None, "imageUrl": None,
        "baseImageUrl": None, "imageUrls": None, "thumbnailUrl": None, "progress": None, "failReason": None,
        "hasAIReviewRetried": False, "isThirdParty": False, "isPartner": False, "isPartnerRelax": False,
        "partnerTaskId": None, "partnerTaskInfo": None, "isOfficial": False, "officialTaskId": None,
        "officialTaskInfo": None, "isDiscord": True, "buttons": [], "seed": None, "seedError": None,
        "seedMessageId": None, "clientIp": "127.0.0.1", "jobId": None, "isReplicate": False,
        "replicateSource": None, "replicateTarget": None, "mode": mode, "requestMode": mode, "accountFilter": None,
        "url": None, "proxyUrl": None, "height": None, "width": None, "size": None, "contentType": None,
        "videoGenOriginImageUrl": None, "videoDuration": None, "frameCount": None, "videoUrl": None,
        "videoUrls": None, "useTime": "-", "version": None, "storageOption": None, "videoType": None,
        "isHdVideo": False, "properties": properties,
    }  # fmt: skip
