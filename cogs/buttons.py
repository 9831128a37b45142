"""The job buttons under every result, restart-proof, and the Custom Zoom modal.

Each button's custom_id holds the local job number and the button's index in that job's `buttons`; the
DynamicItem below matches it after any restart, so no view has to be kept in memory.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot import policy, render
from bot.store import COMPLETED, JobRecord
from cogs.common import queued_text, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

PROMPT_LIMIT = 2048
ZOOM_PARAMETER = re.compile(r"--zoom\s+(\S+)")


def custom_zoom_default(prompt: str) -> str:
    """The parent's prompt with `--zoom 2` in place of any zoom it had."""
    return f"{ZOOM_PARAMETER.sub('', prompt).strip()} --zoom 2"


def check_custom_zoom(prompt: str) -> str | None:
    """Why a Custom Zoom prompt would be refused, or None when it is fine."""
    if not prompt.strip():
        return "The prompt is empty."
    if len(prompt) > PROMPT_LIMIT:
        return f"The prompt is {len(prompt)} characters; useapi accepts at most {PROMPT_LIMIT}."
    zooms = ZOOM_PARAMETER.findall(prompt)
    if len(zooms) != 1:
        return "Custom Zoom needs exactly one `--zoom` value between 1 and 2, e.g. `--zoom 1.5`."
    try:
        value = float(zooms[0])
    except ValueError:
        return f"`--zoom {zooms[0]}` is not a number: use a value between 1 and 2."
    if not 1.0 <= value <= 2.0:
        return f"`--zoom {zooms[0]}` is out of range: use a value between 1 and 2."
    return None


async def submit_click(interaction: discord.Interaction[RelayBot], parent: JobRecord, button: str,
                       prompt: str | None) -> None:
    """Send a click on through the relay and tell the clicker where its result will appear."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.channel_id is not None
    bot = interaction.client
    job = await bot.relay.submit_button(owner_id=interaction.user.id, guild_id=parent.guild_id,
                                        channel_id=interaction.channel_id, parent=parent, button=button,
                                        prompt=prompt)
    bot.publisher.remember(job.id, interaction)
    await reply(interaction, queued_text(job.id, job.guild_id, job.channel_id, job.message_id))


class CustomZoomModal(discord.ui.Modal, title="Custom Zoom"):
    """Asks for the prompt a Custom Zoom is sent with, pre-filled from the parent job."""

    def __init__(self, parent: JobRecord, button: str) -> None:
        super().__init__(custom_id=f"mj:zoom:{parent.id}:{discord.utils.utcnow().timestamp():.0f}")
        self.parent = parent
        self.button = button
        self.prompt: discord.ui.TextInput[CustomZoomModal] = discord.ui.TextInput(
            label="Prompt (with --zoom between 1 and 2)", style=discord.TextStyle.paragraph,
            default=render.shorten(custom_zoom_default(parent.prompt), 4000), max_length=4000)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        value = self.prompt.value.strip()
        problem = check_custom_zoom(value)
        if problem is not None:
            await reply(interaction, f"Nothing was sent. {problem}")
            return
        await submit_click(interaction, self.parent, self.button, value)

    async def on_error(self, interaction: discord.Interaction[RelayBot], error: Exception,  # type: ignore[override]
                       /) -> None:
        log.exception("Custom Zoom modal failed", exc_info=error)
        await reply(interaction, "Something went wrong sending that; nothing was lost, please try again.")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=render.CUSTOM_ID_TEMPLATE):
    """Any button under any job the relay has shown."""

    def __init__(self, job_id: int, index: int) -> None:
        super().__init__(discord.ui.Button(custom_id=render.custom_id(job_id, index)))
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        return cls(int(match["job"]), int(match["index"]))

    async def callback(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        # discord.py only logs errors raised here, so the button answers its own failures.
        try:
            await self._click(interaction)
        except Exception:
            log.exception("click on job %d button %d failed", self.job_id, self.index)
            await reply(interaction, "Something went wrong with that click; nothing was sent.")

    async def _click(self, interaction: discord.Interaction[RelayBot]) -> None:
        bot = interaction.client
        refusal = bot.refusal(interaction.guild_id)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        parent = await bot.store.get_job(self.job_id)
        # A job is only ever acted on in the server it was made in.
        if parent is None or parent.guild_id != interaction.guild_id:
            await reply(interaction, "This bot does not know that job.")
            return
        if self.index >= len(parent.buttons):
            await reply(interaction, f"Job #{parent.id} has no such button.")
            return
        button = parent.buttons[self.index]
        refused = policy.click_refusal(interaction.user, parent, await bot.store.guild_settings(parent.guild_id))
        if refused is not None:
            await reply(interaction, refused)
            return
        if parent.status != COMPLETED or not parent.useapi_jobid:
            await reply(interaction, f"Job #{parent.id} is not completed, so its buttons cannot be used.")
            return
        if button == "Custom Zoom":
            await interaction.response.send_modal(CustomZoomModal(parent, button))
            return
        log.info("job %d: %s clicked by %d", parent.id, button, interaction.user.id)
        await submit_click(interaction, parent, button, None)


async def setup(bot: RelayBot) -> None:
    bot.add_dynamic_items(JobButton)
