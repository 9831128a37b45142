"""The job buttons under every result, restart-proof, and the Custom Zoom and Remix modals.

Each button's custom_id holds the database's identity, the job number and the button's index in that job's
buttons; the DynamicItem below matches it after any restart, so no view has to be kept in memory. Everything
the backend would refuse is checked here first, so a refusal names its reason and costs no backend call.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import discord

from bot import messages, policy, prompts, render
from bot.editor import LIFETIME, NEEDS_PUBLIC_URL
from bot.jobs import COMPLETED, JobRecord
from bot.relay import DESCRIBE, ImagesGone
from bot.store import OneShotTaken
from cogs.common import (
    acknowledged,
    answer_failure,
    cannot_post_here,
    defer,
    queued_text,
    refuse,
    reply,
    turn_away,
)

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

CLICK_FAILURE = "Something went wrong with that click; nothing was sent."


async def check_click(bot: RelayBot, user: discord.abc.User, guild_id: int | None, parent: JobRecord | None,
                      button: str) -> str | None:
    """Every local reason not to send `button` of `parent` for `user` (before any backend call), or None."""
    # A job is only ever acted on in the server it was made in.
    if parent is None or parent.guild_id != guild_id:
        return "This bot does not know that job."
    refused = policy.click_refusal(user, parent, await bot.store.teams.guild_settings(parent.guild_id))
    if refused is not None:
        return refused
    facts = bot.relay.facts
    if parent.backend != facts.name:
        return (f"Job #{parent.id} was made through {parent.backend}, a backend this bot is no longer configured "
                "for, so its buttons cannot be used.")
    if parent.status != COMPLETED or not parent.backend_job_id:
        return f"Job #{parent.id} is {parent.status}, not completed, so its buttons cannot be used."
    if parent.button_named(button) is None:
        offered = ", ".join(b.name for b in parent.buttons) or "none"
        return f"`{button}` is not one of job #{parent.id}'s buttons (it has: {offered})."
    if button in facts.unsupported:
        return facts.unsupported[button]
    return bot.relay.reference_problem()


def one_shot_answer(button: str, parent: JobRecord, existing: JobRecord | None) -> str:
    """A one-shot button used again: where its job is, made or on its way."""
    link = (messages.jump_url(existing.guild_id, existing.channel_id, existing.message_id)
            if existing is not None and existing.message_id is not None else None)
    if existing is None or existing.status == COMPLETED:
        return messages.duplicate(button, parent.id, link)
    where = f": {link}" if link else "."
    return f"{button} of #{parent.id} is already on its way as job #{existing.id}, so nothing new was sent{where}"


async def submit_click(interaction: discord.Interaction[RelayBot], parent: JobRecord, button: str,
                       prompt: str | None, note: str | None = None) -> None:
    """Send a click on through the relay and tell the clicker where its result will appear."""
    if not interaction.response.is_done():
        await defer(interaction)
    assert interaction.channel_id is not None
    bot = interaction.client
    record = parent.button_named(button)
    assert record is not None
    if await cannot_post_here(interaction) or await turn_away(interaction, parent.guild_id):
        return
    try:
        if parent.kind == DESCRIBE:
            # The clicker's own /imagine (or describe again), on their queue and quota.
            job = await bot.relay.submit_from_description(owner_id=interaction.user.id,
                                                          channel_id=interaction.channel_id, parent=parent,
                                                          button=record)
        else:
            job = await bot.relay.submit_button(owner_id=interaction.user.id, guild_id=parent.guild_id,
                                                channel_id=interaction.channel_id, parent=parent, button=record,
                                                prompt=prompt)
    except OneShotTaken as taken:
        await reply(interaction, one_shot_answer(button, parent, taken.existing))
        return
    except ImagesGone as gone:
        await reply(interaction, str(gone))
        return
    bot.publisher.remember(job.id, interaction)
    text = queued_text(job.id, job.guild_id, job.channel_id, job.message_id)
    if bot.relay.paused_reason is not None:
        text += f"\nIt waits: {bot.relay.paused_reason}"
    if note:
        text += f"\n{note}"
    await reply(interaction, text)


async def click(interaction: discord.Interaction[RelayBot], parent: JobRecord | None, button: str,
                prompt: str | None = None, *, by_command: bool = False) -> None:
    """One click, from a button or from /button: check it, open a modal if it needs one, or send it."""
    bot = interaction.client
    problem = await check_click(bot, interaction.user, interaction.guild_id, parent, button)
    if problem is not None:
        await refuse(interaction, problem)
        return
    assert parent is not None
    facts = bot.relay.facts
    if parent.kind == DESCRIBE:
        # Its buttons are the relay's own (an /imagine, or describe again): no modal, no one-shot, no Remix.
        await submit_click(interaction, parent, button, None)
        return
    if button in facts.region:
        await region_link(interaction, parent, button)
        return
    if button in facts.one_shot:
        existing = await bot.store.jobs.live_one_shot(parent.id, button)
        if existing is not None and existing.status == COMPLETED and existing.published:
            # Not an error: the backend would refuse it; the result is already in the channel.
            await reply(interaction, one_shot_answer(button, parent, existing))
            return
    remix_state = await bot.store.state.account_remix()
    if by_command:
        problem = prompts.check_prompt(button, prompt, remix_state, facts)
        if problem is not None:
            await refuse(interaction, problem)
            return
        await submit_click(interaction, parent, button, prompt)
        return
    if button in facts.needs_prompt:
        await interaction.response.send_modal(PromptModal(parent, button, prompts.custom_zoom_default(parent.prompt)))
        acknowledged(interaction)
        return
    if button in facts.remix_prompt and await bot.store.teams.remix_enabled(interaction.user.id):
        if remix_state is False:
            note = ("Your Remix is on, but the Midjourney account's Remix mode is off, so this was sent with the "
                    "job's own prompt. An admin can turn it on with `/relay remix on`.")
            await submit_click(interaction, parent, button, None, note)
            return
        await interaction.response.send_modal(PromptModal(parent, button, parent.prompt))
        acknowledged(interaction)
        return
    log.info("job %d: %s clicked by %d", parent.id, button, interaction.user.id)
    await submit_click(interaction, parent, button, None)


async def region_link(interaction: discord.Interaction[RelayBot], parent: JobRecord, button: str) -> None:
    """Vary (Region): a private link to the bot's editor, for this member and this job (nothing is sent yet)."""
    bot = interaction.client
    url = await bot.relay.region.link_for(parent, interaction.user.id)
    if url is None:
        await reply(interaction, NEEDS_PUBLIC_URL)
        return
    log.info("job %d: %s clicked by %d; editor link given", parent.id, button, interaction.user.id)
    minutes = int(LIFETIME.total_seconds() // 60)
    await reply(interaction, f"Mark the region to redraw, then send it from this page (for you only, valid "
                             f"{minutes} minutes, sends once): {url}")


class PromptModal(discord.ui.Modal):
    """Custom Zoom, or a Remix click: the prompt the button is sent with, pre-filled from the parent job."""

    def __init__(self, parent: JobRecord, button: str, default: str) -> None:
        zoom = button == "Custom Zoom"
        title = "Custom Zoom" if zoom else render.shorten(f"Remix: {button} of job #{parent.id}", 45)
        super().__init__(title=title, custom_id=f"mj:{'zoom' if zoom else 'remix'}:{parent.id}:{time.time_ns()}")
        self.parent = parent
        self.button = button
        label = "Prompt (with --zoom between 1 and 2)" if zoom else "Prompt"
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=label, style=discord.TextStyle.paragraph,
            default=render.shorten(default, prompts.MODAL_TEXT_LIMIT), max_length=prompts.MODAL_TEXT_LIMIT)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        bot = interaction.client
        value = self.prompt.value.strip()
        parent = await bot.store.jobs.get(self.parent.id)
        problem = await check_click(bot, interaction.user, interaction.guild_id, parent, self.button)
        if problem is None:
            problem = prompts.check_prompt(self.button, value, await bot.store.state.account_remix(),
                                           bot.relay.facts)
        if problem is not None:
            await refuse(interaction, problem)
            return
        assert parent is not None
        log.info("job %d: %s sent with a prompt by %d", parent.id, self.button, interaction.user.id)
        await submit_click(interaction, parent, self.button, value)

    async def on_error(self, interaction: discord.Interaction[RelayBot], error: Exception,  # type: ignore[override]
                       /) -> None:
        await answer_failure(interaction, error, "Something went wrong sending that; nothing was lost, please try "
                                                 "again.")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=render.CUSTOM_ID_TEMPLATE):
    """Any button under any job the relay has shown, before or after any restart."""

    def __init__(self, database: str | None, job_id: int, index: int) -> None:
        value = (render.custom_id(database, job_id, index) if database is not None
                 else f"{render.CUSTOM_ID_PREFIX}:{job_id}:{index}")
        super().__init__(discord.ui.Button(custom_id=value))
        self.database = database
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        return cls(match["db"], int(match["job"]), int(match["index"]))

    async def callback(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        # discord.py only logs errors raised here, so the button answers its own failures.
        try:
            await self._click(interaction)
        except Exception as exc:
            await answer_failure(interaction, exc, CLICK_FAILURE)

    async def _click(self, interaction: discord.Interaction[RelayBot]) -> None:
        bot = interaction.client
        refusal = bot.refusal(interaction.guild_id)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        parent = await bot.store.jobs.get(self.job_id)
        if not self._made_here(bot, interaction, parent):
            await reply(interaction, messages.DATABASE_RESET)
            return
        if parent is not None and self.index >= len(parent.buttons):
            await reply(interaction, f"Job #{parent.id} has no such button.")
            return
        await click(interaction, parent, parent.buttons[self.index].name if parent is not None else "")

    def _made_here(self, bot: RelayBot, interaction: discord.Interaction[RelayBot], parent: JobRecord | None) -> bool:
        """Whether this button was made by this database (False: by a lost one, or by one it cannot prove).

        A button posted before databases had identities is believed only where the store can prove it is its
        own: the message clicked is one it recorded for that job. Otherwise a lost database's job #12 would be
        mistaken for a new #12, and Midjourney time spent on the wrong job.
        """
        if self.database is not None:
            return self.database == bot.store.identity
        if parent is None:
            return False
        clicked = interaction.message.id if interaction.message is not None else None
        return clicked is not None and clicked in (parent.message_id, *parent.extra_message_ids)


async def setup(bot: RelayBot) -> None:
    bot.add_dynamic_items(JobButton)
