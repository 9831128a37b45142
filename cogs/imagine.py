"""/imagine: a prompt becomes a Midjourney job whose grid appears in the channel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import prompts
from bot.backends import LARGEST_PROMPT
from cogs.attachments import read_images
from cogs.common import cannot_post_here, defer, queued_text, refuse, reply, turn_away

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)


class Imagine(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create images with Midjourney")
    @app_commands.describe(prompt="What Midjourney should imagine, with any --parameters",
                           image1="An image prompt: Midjourney starts from it (PNG, JPEG, WebP or GIF, 10 MiB at most)",
                           image2="A second image prompt", image3="A third image prompt")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def imagine(self, interaction: discord.Interaction[RelayBot],
                      prompt: app_commands.Range[str, 1, LARGEST_PROMPT], image1: discord.Attachment | None = None,
                      image2: discord.Attachment | None = None, image3: discord.Attachment | None = None) -> None:
        # Acknowledge first: Discord allows 3 seconds, whatever the backend's latency.
        await defer(interaction)
        text = prompt.strip()
        relay = self.bot.relay
        if not text:
            await reply(interaction, "The prompt is empty: describe what Midjourney should imagine.")
            return
        # The option allows the longest prompt of any backend; this one's own limit is checked here.
        problem = prompts.too_long(text, relay.facts)
        if problem is not None:
            await refuse(interaction, problem)
            return
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if await cannot_post_here(interaction):
            return
        images = await read_images(interaction, (image1, image2, image3))
        if images is None or await turn_away(interaction, interaction.guild_id):
            return
        job = await relay.submit_imagine(owner_id=interaction.user.id, guild_id=interaction.guild_id,
                                         channel_id=interaction.channel_id, prompt=text, images=images)
        self.bot.publisher.remember(job.id, interaction)
        await reply(interaction, queued_text(job.id, job.guild_id, job.channel_id, job.message_id))


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(Imagine(bot))
