"""The facts of the mj-proxy protocol that code on both sides of it relies on.

Sources: /work/shared/reference/mj-proxy-protocol.md, and trueai-org/midjourney-proxy at ed32197 (the files
are named next to each fact). Pure data: importing it pulls in neither aiohttp nor Pillow.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCEPTED_CODES",
    "ARROWS",
    "BLEND_DIMENSIONS",
    "CANCEL_REASON",
    "CODE_BANNED_PROMPT",
    "CODE_EXISTED",
    "CODE_FAILURE",
    "CODE_IN_QUEUE",
    "CODE_NOT_FOUND",
    "CODE_QUEUE_REJECTED",
    "CODE_SUCCESS",
    "CODE_VALIDATION_ERROR",
    "CUSTOM_ZOOM",
    "DESCRIBE",
    "FINAL_STATUSES",
    "GRID_BUTTONS",
    "MAX_BLEND",
    "MAX_NOTIFY_HOOK",
    "MAX_PROMPT",
    "MAX_STATE",
    "MIN_BLEND",
    "MODERATION_PHRASES",
    "ONE_SHOT_BUTTONS",
    "REMIX_BUTTONS",
    "SEED_WAIT",
    "SPEED_MODES",
    "STATUSES",
    "UNSUPPORTED_BUTTONS",
    "UPSCALE_BUTTONS",
    "VARY_REGION",
    "WAITING_FOR_MODAL",
    "is_moderation",
]

# ---- result codes of every submit answer (src/Midjourney.Base/Dto/ReturnCode.cs)
CODE_SUCCESS: Final = 1
CODE_NOT_FOUND: Final = 3
CODE_VALIDATION_ERROR: Final = 4
CODE_FAILURE: Final = 9
CODE_EXISTED: Final = 21  # an upscale already made (novicezk's /submit/change), or a task waiting for its modal
CODE_IN_QUEUE: Final = 22  # properties.numberOfQueues: tasks waiting ahead of it
CODE_QUEUE_REJECTED: Final = 23  # defined by trueai; its own full queue answers code 9 (DiscordService.cs)
CODE_BANNED_PROMPT: Final = 24  # properties.promptEn, properties.bannedWord
ACCEPTED_CODES: Final = frozenset({CODE_SUCCESS, CODE_IN_QUEUE})

# The description trueai gives a task that waits for /submit/modal (TaskService.SubmitAction).
WAITING_FOR_MODAL: Final = "Waiting for window confirm"
# TaskController.Cancel fails the task with this reason; trueai never sets the CANCEL status itself.
CANCEL_REASON: Final = "取消任务"

# ---- task statuses (Models/Enums.cs, TaskStatus), serialised by name
NOT_START: Final = "NOT_START"
SUBMITTED: Final = "SUBMITTED"
IN_PROGRESS: Final = "IN_PROGRESS"
FAILURE: Final = "FAILURE"
SUCCESS: Final = "SUCCESS"
MODAL: Final = "MODAL"
CANCEL: Final = "CANCEL"
STATUSES: Final = (NOT_START, SUBMITTED, IN_PROGRESS, FAILURE, SUCCESS, MODAL, CANCEL)
FINAL_STATUSES: Final = frozenset({FAILURE, SUCCESS, CANCEL})  # TaskInfo.IsCompleted

# How a failReason says Midjourney (or the proxy's banned-word list) refused the prompt: matched without case.
# Midjourney's own words ("Banned prompt detected", "Sorry! Our AI moderators feel your prompt might be against
# our community standards", "Action needed to continue", "Image denied") and the proxy's word-list failure
# ("可能包含敏感词", DiscordService.RedisQueueUpdateProgress).
MODERATION_PHRASES: Final = (
    "banned prompt",
    "community standards",
    "ai moderator",
    "action needed",
    "image denied",
    "可能包含敏感词",
)


def is_moderation(reason: str | None) -> bool:
    """Whether a failure reason says the prompt was refused rather than the job failing."""
    if not reason:
        return False
    lowered = reason.lower()
    return any(phrase in lowered for phrase in MODERATION_PHRASES)


# ---- limits (Controllers/SubmitController.cs, NewTask)
MAX_STATE: Final = 255  # "State参数过长，最大255字符"
MAX_NOTIFY_HOOK: Final = 2000  # "NotifyHook参数过长，最大2000字符"
# The proxy sets no prompt limit; a Remix or Custom Zoom prompt goes through Discord's modal text input, which
# holds at most 4000 characters, so a longer prompt could start a grid but not be varied with its own words.
MAX_PROMPT: Final = 4000

# ---- buttons, by the name a member sees (label, else emoji: Models/CustomComponentModel.cs)
ARROWS: Final = ("⬅️", "➡️", "⬆️", "⬇️")
CUSTOM_ZOOM: Final = "Custom Zoom"
VARY_REGION: Final = "Vary (Region)"
GRID_BUTTONS: Final = ("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4")
UPSCALE_BUTTONS: Final = (
    "Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)", VARY_REGION,
    "Zoom Out 2x", "Zoom Out 1.5x", CUSTOM_ZOOM, *ARROWS, "Animate (High motion)", "Animate (Low motion)",
)  # fmt: skip
ONE_SHOT_BUTTONS: Final = frozenset({"U1", "U2", "U3", "U4"})
# Buttons the proxy turns into a modal (code 21) when Remix is on or the press asks for it (enableRemix).
REMIX_BUTTONS: Final = frozenset({"V1", "V2", "V3", "V4", "Vary (Strong)", "Vary (Subtle)", *ARROWS, "🔄"})
# Vary (Region) needs its region marked first: the relay's own editor (bot/editor) gives the mask, sent with the
# prompt in the modal step. Nothing is unsupported now; the mapping stays for what a later Midjourney adds.
UNSUPPORTED_BUTTONS: Final[dict[str, str]] = {}
# Buttons whose press takes a region (a mask the member marks in the editor) with its prompt.
REGION_BUTTONS: Final = frozenset({VARY_REGION})

# ---- describe, blend and the seed (SubmitController.Describe and Blend, TaskController.ImageSeed)
DESCRIBE: Final = "DESCRIBE"  # the TaskAction of a describe; its prompts are in properties.finalPrompt
MIN_BLEND: Final = 2  # "图片参数错误，2~5张图片"
MAX_BLEND: Final = 5
BLEND_DIMENSIONS: Final = ("PORTRAIT", "SQUARE", "LANDSCAPE")  # BlendDimensions, by name
# TaskService.SubmitSeed waits up to 60 s for Midjourney's reply before it answers GET /task/{id}/image-seed.
SEED_WAIT: Final = 60.0

# ---- speed bases: trueai serves /submit and /task under /mj-fast/mj, /mj-relax/mj and /mj-turbo/mj too; the path
# sets the task's speed (SimpleAuthMiddleware's Mode), kept as its requestMode and mode (SubmitController.NewTask).
SPEED_MODES: Final = {"fast": "FAST", "relax": "RELAX", "turbo": "TURBO"}  # GenerationSpeedMode, by name
