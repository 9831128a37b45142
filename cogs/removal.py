"""/delete (a member's own result) and what `/relay purge` shares with it: a confirmation first, then the
messages deleted and the result's links forgotten, and a sentence saying what was removed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages, policy, render
from bot.jobs import JobRecord
from cogs.common import acknowledged, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

CONFIRM_SECONDS = 120.0


def removed_text(what: str, jobs: int, deleted: int, links: int, left: int = 0) -> str:
    """What a removal did, in one sentence."""
    text = (f"Removed {what}: {messages.plural(jobs, 'job')}, {messages.plural(deleted, 'message')} deleted, "
            f"{messages.plural(links, 'result link')} forgotten.")
    if left:
        text += f" {messages.plural(left, 'unfinished job')} left as they are (cancel them with ❌ first)."
    return text


async def remove_all(bot: RelayBot, jobs: list[JobRecord], *, forget_prompt: bool) -> tuple[int, int, int, int]:
    """Remove each finished job; (jobs removed, messages deleted, links forgotten, unfinished left)."""
    done = deleted = links = left = 0
    for job in jobs:
        counts = await bot.relay.remove(job, forget_prompt=forget_prompt)
        if counts is None:
            left += 1
            continue
        done += 1
        deleted += counts[0]
        links += counts[1]
    return done, deleted, links, left


class _Answer(discord.ui.Button["Confirm"]):
    def __init__(self, label: str, style: discord.ButtonStyle, *, yes: bool) -> None:
        super().__init__(label=label, style=style)
        self.yes = yes

    async def callback(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        assert self.view is not None
        await self.view.answer(interaction, yes=self.yes)


class Confirm(discord.ui.View):
    """Two buttons under a private question; only the member who asked may answer, within two minutes."""

    def __init__(self, asker: int, label: str, act: Callable[[discord.Interaction[RelayBot]], Awaitable[str]]) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self._asker = asker
        self._act = act
        self.add_item(_Answer(label, discord.ButtonStyle.danger, yes=True))
        self.add_item(_Answer("Keep it", discord.ButtonStyle.secondary, yes=False))

    async def interaction_check(self, interaction: discord.Interaction[RelayBot]) -> bool:  # type: ignore[override]
        return interaction.user.id == self._asker

    async def answer(self, interaction: discord.Interaction[RelayBot], *, yes: bool) -> None:
        self.stop()
        if not yes:
            await interaction.response.edit_message(content="Nothing was removed.", view=None)
            acknowledged(interaction)
            return
        # Deferred as an update of the question itself, which then becomes the answer.
        await interaction.response.defer()
        acknowledged(interaction)
        text = await self._act(interaction)
        await interaction.edit_original_response(content=text, view=None, allowed_mentions=render.NO_MENTIONS)


async def ask(interaction: discord.Interaction[RelayBot], question: str, label: str,
              act: Callable[[discord.Interaction[RelayBot]], Awaitable[str]]) -> None:
    await interaction.response.send_message(render.shorten(question, render.MESSAGE_LIMIT), ephemeral=True,
                                            view=Confirm(interaction.user.id, label, act),
                                            allowed_mentions=render.NO_MENTIONS)
    acknowledged(interaction)


class Removal(commands.Cog):
    """/delete."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @app_commands.command(name="delete", description="Delete one of your results: its message and its image links")
    @app_commands.describe(job="The job number the bot shows (#12)")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def delete(self, interaction: discord.Interaction[RelayBot], job: app_commands.Range[str, 1, 20]) -> None:
        number = job.strip().lstrip("#")
        found = await self.bot.store.jobs.get(int(number)) if number.isdigit() and len(number) <= 12 else None
        if found is None or found.guild_id != interaction.guild_id:
            await reply(interaction, f"There is no job `{discord.utils.escape_markdown(job.strip())}` in this server.")
            return
        if found.owner_id != interaction.user.id and not policy.is_admin(interaction.user):
            await reply(interaction, f"Job #{found.id} belongs to <@{found.owner_id}>; only they (or a server manager) "
                                     "can delete it.")
            return
        if not found.is_final:
            await reply(interaction, f"Job #{found.id} is {found.status}; cancel it with ❌ on its message first.")
            return

        async def act(_: discord.Interaction[RelayBot]) -> str:
            done, deleted, links, left = await remove_all(self.bot, [found], forget_prompt=False)
            return removed_text(f"job #{found.id}", done, deleted, links, left)

        await ask(interaction, f"Delete job #{found.id} ({render.shorten(found.prompt, 80)}): its message in "
                               f"<#{found.channel_id}> and its result's links? This cannot be undone.",
                  f"Delete job #{found.id}", act)


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(Removal(bot))
