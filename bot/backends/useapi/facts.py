"""The facts of useapi.net's Midjourney v2 contract that code on both sides of it relies on.

Sources: ../shared/reference/useapi-v2-contract.md (the contract as the relay reads it) and
useapi-v2-jobs-button.txt (useapi's jobs/button page: the button enum, Remix prompts, maxJobs, the limits),
both in /work/shared/reference. Pure data: importing it pulls in neither aiohttp nor Pillow.
"""

from __future__ import annotations

__all__ = [
    "ANIMATE_BUTTONS",
    "ARROWS",
    "BLEND_DIMENSIONS",
    "CUSTOM_ZOOM",
    "DEFAULT_MAX_JOBS",
    "EXECUTING_STATUSES",
    "EXTEND_BUTTONS",
    "FINAL_STATUSES",
    "GRID_BUTTONS",
    "MAX_BLEND",
    "MAX_JOBS_LIMIT",
    "MAX_PROMPT",
    "MAX_REPLY",
    "MIN_BLEND",
    "ONE_SHOT_BUTTONS",
    "REMIX_BUTTONS",
    "SPEED_COMMANDS",
    "SUPPORTED_BUTTONS",
    "UPSCALE_BUTTONS",
]

ARROWS = ["⬅️", "➡️", "⬆️", "⬇️"]
CUSTOM_ZOOM = "Custom Zoom"
# What a completed grid offers, and what a completed U1..U4 upscale offers, in Midjourney's order.
GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
# Midjourney's video buttons (useapi's later jobs/button page): Animate under an upscale, Extend under a video.
ANIMATE_BUTTONS = ["Animate (High motion)", "Animate (Low motion)"]
EXTEND_BUTTONS = ["Extend (High motion)", "Extend (Low motion)"]
UPSCALE_BUTTONS = [
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    CUSTOM_ZOOM,
    *ARROWS,
    *ANIMATE_BUTTONS,
]
# The button enum of useapi's OpenAPI file, and the video buttons added since: anything else is "not supported".
SUPPORTED_BUTTONS = frozenset(
    {
        "U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", *ARROWS, "🔄",
        "Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x",
        "Upscale (2x)", "Upscale (4x)", "Upscale (Subtle)", "Upscale (Creative)",
        "Redo Upscale (2x)", "Redo Upscale (4x)", "Redo Upscale (Subtle)", "Redo Upscale (Creative)",
        "Make Square", "Make Variations", "Remaster", CUSTOM_ZOOM, *ANIMATE_BUTTONS, *EXTEND_BUTTONS,
    }
)  # fmt: skip
# Each of these runs once per job: a second press answers 409 with the child that already ran it.
ONE_SHOT_BUTTONS = frozenset({"U1", "U2", "U3", "U4"})
# The buttons that also take a prompt while Midjourney's Remix mode is on (Custom Zoom always needs one).
REMIX_BUTTONS = frozenset({"V1", "V2", "V3", "V4", "Vary (Strong)", "Vary (Subtle)", *ARROWS, "🔄"})

MAX_PROMPT = 2048  # the newer doc page; the OpenAPI file still says 1024
MAX_REPLY = 1024  # replyUrl and replyRef alike
DEFAULT_MAX_JOBS = 3  # what useapi assumes when a call leaves maxJobs out
MAX_JOBS_LIMIT = 15  # the most maxJobs accepts (Pro and Mega plans)

# jobs/blend (the OpenAPI file): blendUrls holds 2 to 5 links; blendDimensions is one of these, as written.
MIN_BLEND = 2
MAX_BLEND = 5
BLEND_DIMENSIONS = ("Portrait", "Square", "Landscape")
# The settings commands that set the account's speed (POST jobs/<name>); each answers `completed` at once.
SPEED_COMMANDS = ("fast", "relax", "turbo")

FINAL_STATUSES = frozenset({"completed", "failed", "moderated", "cancelled"})
EXECUTING_STATUSES = frozenset({"created", "started", "progress"})
