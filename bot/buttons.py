"""Pure rules about a job's buttons: which row each goes on (as Midjourney groups them), which are emoji,
which make an upscale. The Discord side draws them; the relay decides with them."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from bot.jobs import Button

ROWS_PER_MESSAGE = 5  # Discord: five action rows a message ...
BUTTONS_PER_ROW = 5  # ... of five buttons each
ARROWS = frozenset({"⬅️", "➡️", "⬆️", "⬇️"})

_U = re.compile(r"U[1-4]")
_V = re.compile(r"V[1-4]")


def family(name: str) -> str:
    """Which row a button goes on, as Midjourney groups them."""
    if _U.fullmatch(name) or name == "🔄":
        return "U"
    if _V.fullmatch(name):
        return "V"
    if name in ARROWS:
        return "pan"
    if name in {"Make Variations", "Remaster"}:
        return "vary"
    first = name.split(" ", 1)[0]
    if first in {"Zoom", "Custom", "Make"}:
        return "zoom"
    if first in {"Upscale", "Redo"}:
        return "upscale"
    if first == "Vary":
        return "vary"
    if first in {"Animate", "Extend"}:
        return "video"
    return "other"


def rows(names: Sequence[str]) -> list[list[int]]:
    """Indexes of `names`, in rows of at most five, a row per family in order of first appearance."""
    families: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        families.setdefault(family(name), []).append(index)
    found: list[list[int]] = []
    for members in families.values():
        for start in range(0, len(members), BUTTONS_PER_ROW):
            found.append(members[start : start + BUTTONS_PER_ROW])
    return found


def pages(names: Sequence[str]) -> list[list[list[int]]]:
    """Rows split into messages of at most five rows each: a job's buttons are never dropped."""
    laid = rows(names)
    return [laid[start : start + ROWS_PER_MESSAGE] for start in range(0, len(laid), ROWS_PER_MESSAGE)]


def is_emoji(name: str) -> bool:
    """A button name with no letters or digits, like 🔄 or ⬅️, shown as an emoji rather than a label."""
    return bool(name) and len(name) <= 4 and not any(ch.isalnum() or ch.isspace() for ch in name)


def is_upscale(button: str | None, one_shot: Collection[str]) -> bool:
    """Whether a job made by `button` is a single upscaled image: a one-shot U of a grid, or any
    Upscale (...) / Redo Upscale (...) of an upscale."""
    name = button or ""
    return name in one_shot or name.startswith(("Upscale (", "Redo Upscale ("))


# A finished /describe's own buttons, made by the relay (not the backend's): a number starts an /imagine with
# that prompt, 🔄 describes the same image again. Their references say so, so no backend is ever asked to
# press them.
DESCRIBE_PICKS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
DESCRIBE_AGAIN = "🔄"
RELAY_REF = "relay:"


def describe_buttons(prompts: Sequence[str]) -> tuple[Button, ...]:
    """The buttons under a describe's prompts: one per prompt (at most four), then 🔄."""
    picks = tuple(Button(name, f"{RELAY_REF}pick:{index}") for index, name in enumerate(DESCRIBE_PICKS[:len(prompts)]))
    return (*picks, Button(DESCRIBE_AGAIN, f"{RELAY_REF}describe"))


def describe_pick(button: Button) -> int | None:
    """Which prompt a describe's button starts an /imagine with (None: it is 🔄, or not the relay's)."""
    prefix = f"{RELAY_REF}pick:"
    return int(button.ref.removeprefix(prefix)) if button.ref.startswith(prefix) else None
