"""A job as Discord shows it: the text of its card and its buttons, laid out the way Midjourney does."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import discord

from bot import buttons
from bot.jobs import COMPLETED, DUPLICATE, MODERATED, QUEUED, SUBMITTING, JobRecord

# custom_id of a job button: the database's identity, the job number and the button's index in that job's
# buttons. Short (a backend's job id would not fit in Discord's 100) and stable across restarts; the identity
# makes a button from a lost database's job #12 refuse to act on a new database's #12.
CUSTOM_ID_PREFIX = "mj:b"
CUSTOM_ID_TEMPLATE = r"mj:b:(?:(?P<db>[0-9a-f]{10}):)?(?P<job>[0-9]{1,18}):(?P<index>[0-9]{1,3})"
_CUSTOM_ID = re.compile(CUSTOM_ID_TEMPLATE)

MESSAGE_LIMIT = 2000  # Discord's limit for bot message content (the spec file allows more)
PROMPT_SHOWN = 1200  # room left for the rest of a card
LABEL_LIMIT = 80
BAR_CELLS = 10
NO_MENTIONS = discord.AllowedMentions.none()
CANCEL_EMOJI = "❌"  # a reaction on a working message cancels its job, as with Midjourney's own bot


@dataclass(frozen=True, slots=True)
class ButtonId:
    """What a job button's custom_id says: which database (None: a button posted before identities), which job,
    which of its buttons."""

    database: str | None
    job_id: int
    index: int


def custom_id(identity: str, job_id: int, index: int) -> str:
    return f"{CUSTOM_ID_PREFIX}:{identity}:{job_id}:{index}"


def parse_custom_id(value: str) -> ButtonId | None:
    match = _CUSTOM_ID.fullmatch(value)
    if match is None:
        return None
    return ButtonId(match["db"], int(match["job"]), int(match["index"]))


def simulated_banner(reason: str) -> str:
    return f"⚠️ **Simulated result**: {reason}, so this image is not from Midjourney."


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_bar(percent: int) -> str:
    percent = max(0, min(100, percent))
    filled = round(percent / 100 * BAR_CELLS)
    return f"{'▰' * filled}{'▱' * (BAR_CELLS - filled)} {percent}%"


def title(job: JobRecord) -> str:
    """What a card names the job by: its prompt, else the command that made it (a describe or a blend has none)."""
    if job.prompt:
        return job.prompt
    if job.action == "describe":
        return "🔍 Describe"
    if job.action == "blend":
        return f"🔀 Blend ({job.dimensions})" if job.dimensions else "🔀 Blend"
    return "(no prompt)"


def _headline(job: JobRecord) -> str:
    prompt = discord.utils.escape_markdown(shorten(title(job), PROMPT_SHOWN))
    action = f" · {job.button} of #{job.parent_id}" if job.parent_id is not None else ""
    return f"**{prompt}** - <@{job.owner_id}> · job #{job.id}{action}"


def described(job: JobRecord) -> list[str]:
    """A finished describe's prompts, numbered as its buttons are, each cut to share the card fairly."""
    room = (MESSAGE_LIMIT - 300) // max(1, len(job.prompts))
    return [f"{buttons.DESCRIBE_PICKS[index]} {discord.utils.escape_markdown(shorten(text, room))}"
            for index, text in enumerate(job.prompts[:len(buttons.DESCRIBE_PICKS)])]


def _finish(lines: Iterable[str]) -> str:
    return shorten("\n".join(line for line in lines if line), MESSAGE_LIMIT)


def pending_content(job: JobRecord, note: str | None = None, place: int | None = None, banner: str = "") -> str:
    """The working message: who asked for what, and where the job stands."""
    if job.status == QUEUED:
        where = f"⏳ Queued: #{place} in line for a Midjourney slot" if place else "⏳ Queued"
    elif job.status == SUBMITTING:
        where = "📨 Sending to Midjourney…"
    elif job.progress:
        where = f"🎨 {progress_bar(job.progress)}"
    else:
        where = "🎨 Midjourney is working on it…"
    return _finish([_headline(job), where, f"_{note}_" if note else "", banner if job.simulated else ""])


def final_content(job: JobRecord, note: str | None = None, banner: str = "") -> str:
    """The result or failure card's text."""
    if job.status == COMPLETED:
        state = "\n".join(described(job))
    elif job.status == DUPLICATE:
        state = f"↪️ {job.error or 'Already done'}"
    elif job.status == MODERATED:
        state = f"🚫 {job.error or 'Midjourney declined this job.'}"
    else:
        state = f"❌ {job.error or 'The job failed.'}"
    return _finish([_headline(job), state, f"_{note}_" if note else "", banner if job.simulated else ""])


def button_pages(job: JobRecord) -> list[list[list[int]]]:
    """The job's buttons as messages of rows (empty unless it completed)."""
    if job.status != COMPLETED:
        return []
    return buttons.pages([button.name for button in job.buttons])


def build_view(job: JobRecord, identity: str, page: Sequence[Sequence[int]],
               used: frozenset[str] = frozenset()) -> discord.ui.View:
    """A render-only view of one page of the job's buttons; clicks are handled by cogs/buttons.py."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(page):
        for index in row:
            name = job.buttons[index].name
            style = discord.ButtonStyle.primary if name in used else discord.ButtonStyle.secondary
            item_id = custom_id(identity, job.id, index)
            if buttons.is_emoji(name):
                # Midjourney shows 🔄 and the arrows as bare emoji.
                button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
                    emoji=name, style=style, custom_id=item_id, row=row_number)
            else:
                button = discord.ui.Button(label=shorten(name, LABEL_LIMIT), style=style, custom_id=item_id,
                                           row=row_number)
            view.add_item(button)
    # A stopped view is sent as components but never stored by discord.py, so the DynamicItem in
    # cogs/buttons.py is the only thing that answers these buttons, before and after a restart.
    view.stop()
    return view


def preview_embed(url: str) -> discord.Embed:
    """A running job's preview, as an embedded image (linked: a preview changes, and is not worth an upload)."""
    return discord.Embed().set_image(url=url)


def result_embed(url: str, title: str = "Result image") -> discord.Embed:
    """A result shown by its link (it could not be uploaded), as an embedded image."""
    return discord.Embed(url=url, title=title).set_image(url=url)
