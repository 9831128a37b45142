"""A job as Discord shows it: the text of its card and its buttons, laid out the way Midjourney does."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import discord

from bot.store import COMPLETED, DUPLICATE, MODERATED, QUEUED, SUBMITTING, JobRecord

# custom_id of a job button: the local job number and the button's index in that job's `buttons`.
# Short (the ~80-character useapi jobid would not fit in Discord's 100) and stable across restarts.
CUSTOM_ID_PREFIX = "mj:b"
CUSTOM_ID_TEMPLATE = r"mj:b:(?P<job>[0-9]+):(?P<index>[0-9]+)"

MESSAGE_LIMIT = 2000  # Discord's limit for bot message content (the spec file allows more)
PROMPT_SHOWN = 1200  # room left for the rest of a card
LABEL_LIMIT = 80
ROWS_PER_MESSAGE = 5
BUTTONS_PER_ROW = 5
BAR_CELLS = 10
SIMULATED_BANNER = "⚠️ **Simulated result**: no `USEAPI_TOKEN` is set, so this image is not from Midjourney."
NO_MENTIONS = discord.AllowedMentions.none()

_UPSCALE_BUTTON = re.compile(r"U[1-4]")
UPSCALE_BUTTONS = frozenset({"U1", "U2", "U3", "U4"})  # one-shot: shown as used once their upscale exists


def custom_id(job_id: int, index: int) -> str:
    return f"{CUSTOM_ID_PREFIX}:{job_id}:{index}"


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_bar(percent: int) -> str:
    percent = max(0, min(100, percent))
    filled = round(percent / 100 * BAR_CELLS)
    return f"{'▰' * filled}{'▱' * (BAR_CELLS - filled)} {percent}%"


def _headline(job: JobRecord) -> str:
    prompt = discord.utils.escape_markdown(shorten(job.prompt, PROMPT_SHOWN))
    action = f" · {job.button} of #{job.parent_id}" if job.parent_id is not None else ""
    return f"**{prompt}** - <@{job.owner_id}> · job #{job.id}{action}"


def _finish(lines: Iterable[str]) -> str:
    return shorten("\n".join(line for line in lines if line), MESSAGE_LIMIT)


def pending_content(job: JobRecord, note: str | None = None, position: int | None = None) -> str:
    """The working message: who asked for what, and where the job stands."""
    if job.status == QUEUED:
        where = f"⏳ Queued: #{position} in line for a Midjourney slot" if position else "⏳ Queued"
    elif job.status == SUBMITTING:
        where = "📨 Sending to Midjourney…"
    elif job.progress:
        where = f"🎨 {progress_bar(job.progress)}"
    else:
        where = "🎨 Midjourney is working on it…"
    banner = SIMULATED_BANNER if job.simulated else ""
    return _finish([_headline(job), where, f"_{note}_" if note else "", banner])


def final_content(job: JobRecord, note: str | None = None) -> str:
    """The result or failure card's text."""
    if job.status == COMPLETED:
        state = ""
    elif job.status == DUPLICATE:
        state = f"↪️ {job.error or 'Already done'}"
    elif job.status == MODERATED:
        state = f"🚫 {job.error or 'Midjourney declined this job.'}"
    else:
        state = f"❌ {job.error or 'The job failed.'}"
    banner = SIMULATED_BANNER if job.simulated else ""
    return _finish([_headline(job), state, f"_{note}_" if note else "", banner])


def _family(name: str) -> str:
    """Which row a button goes on, as Midjourney groups them."""
    if _UPSCALE_BUTTON.fullmatch(name) or name == "🔄":
        return "U"
    if re.fullmatch(r"V[1-4]", name):
        return "V"
    if name in {"⬅️", "➡️", "⬆️", "⬇️"}:
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
    return "other"


def button_rows(buttons: Sequence[str]) -> list[list[int]]:
    """Indexes of `buttons`, in rows of at most five, a row per family in order of first appearance."""
    families: dict[str, list[int]] = {}
    for index, name in enumerate(buttons):
        families.setdefault(_family(name), []).append(index)
    rows: list[list[int]] = []
    for members in families.values():
        for start in range(0, len(members), BUTTONS_PER_ROW):
            rows.append(members[start : start + BUTTONS_PER_ROW])
    return rows


def button_pages(buttons: Sequence[str]) -> list[list[list[int]]]:
    """Rows split into messages of at most five rows each: a job's buttons are never dropped."""
    rows = button_rows(buttons)
    return [rows[start : start + ROWS_PER_MESSAGE] for start in range(0, len(rows), ROWS_PER_MESSAGE)]


def is_emoji(name: str) -> bool:
    """A button name with no letters or digits, like 🔄 or ⬅️, shown as an emoji rather than a label."""
    return bool(name) and len(name) <= 4 and not any(ch.isalnum() or ch.isspace() for ch in name)


def build_view(job: JobRecord, page: Sequence[Sequence[int]], used: frozenset[str] = frozenset()) -> discord.ui.View:
    """A render-only view of one page of the job's buttons; clicks are handled by cogs/buttons.py."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(page):
        for index in row:
            name = job.buttons[index]
            style = discord.ButtonStyle.primary if name in used else discord.ButtonStyle.secondary
            if is_emoji(name):
                # Midjourney shows 🔄 and the arrows as bare emoji.
                button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
                    emoji=name, style=style, custom_id=custom_id(job.id, index), row=row_number)
            else:
                button = discord.ui.Button(label=shorten(name, LABEL_LIMIT), style=style,
                                           custom_id=custom_id(job.id, index), row=row_number)
            view.add_item(button)
    # A stopped view is sent as components but never stored by discord.py, so the DynamicItem in
    # cogs/buttons.py is the only thing that answers these buttons, before and after a restart.
    view.stop()
    return view

