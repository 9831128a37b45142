"""/describe and /blend: Midjourney's commands that start from images rather than a prompt.

/describe answers in the channel with the four prompts Midjourney suggests, and buttons that start an
/imagine with one of them (1️⃣..4️⃣) or describe the image again (🔄). /blend makes a grid from two to five
images. The images are checked and kept before anything is sent (cogs/attachments.py, bot/uploads.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.backends.base import DIMENSIONS
from bot.fetch import FetchRefused, fetch_image
from bot.uploads import Upload
from cogs.attachments import read_images
from cogs.common import answer_failure, cannot_post_here, defer, queued_text, refuse, reply, turn_away

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

DIMENSION_CHOICES = [app_commands.Choice(name=name, value=name) for name in DIMENSIONS]
ONE_IMAGE = "Give `/describe` one image: attach it as `image`, or give its link as `url`, not both."


class Images(commands.Cog):
    """/describe and /blend."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Midjourney suggests four prompts for an image")
    @app_commands.describe(image="The image to describe (PNG, JPEG, WebP or GIF, 10 MiB at most)",
                           url="Or the image's http(s) link")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def describe(self, interaction: discord.Interaction[RelayBot], image: discord.Attachment | None = None,
                       url: app_commands.Range[str, 1, 2000] | None = None) -> None:
        await defer(interaction)
        if (image is None) == (url is None):
            await reply(interaction, ONE_IMAGE)
            return
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if await cannot_post_here(interaction):
            return
        upload = await self._image(interaction, image, url)
        if upload is None or await turn_away(interaction, interaction.guild_id):
            return
        job = await self.bot.relay.submit_describe(owner_id=interaction.user.id, guild_id=interaction.guild_id,
                                                   channel_id=interaction.channel_id, image=upload)
        self.bot.publisher.remember(job.id, interaction)
        await reply(interaction, queued_text(job.id, job.guild_id, job.channel_id, job.message_id))

    async def _image(self, interaction: discord.Interaction[RelayBot], image: discord.Attachment | None,
                     url: str | None) -> Upload | None:
        if image is not None:
            found = await read_images(interaction, [image])
            return found[0] if found else None
        assert url is not None
        refused = self.bot.relay.images_refused()
        if refused is not None:
            await refuse(interaction, refused)
            return None
        try:
            # Kept like an attachment: the link may change or go away while the job waits.
            return await fetch_image(url.strip(), self.bot.settings.image_url_networks)
        except FetchRefused as exc:
            await refuse(interaction, str(exc))
            return None

    @app_commands.command(name="blend", description="Blend two to five images into a Midjourney grid")
    @app_commands.describe(image1="The first image (PNG, JPEG, WebP or GIF, 10 MiB at most)",
                           image2="The second image", image3="A third image", image4="A fourth image",
                           image5="A fifth image", dimensions="The grid's shape (square unless chosen)")
    @app_commands.choices(dimensions=DIMENSION_CHOICES)
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def blend(self, interaction: discord.Interaction[RelayBot], image1: discord.Attachment,
                    image2: discord.Attachment, image3: discord.Attachment | None = None,
                    image4: discord.Attachment | None = None, image5: discord.Attachment | None = None,
                    dimensions: app_commands.Choice[str] | None = None) -> None:
        await defer(interaction)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if await cannot_post_here(interaction):
            return
        images = await read_images(interaction, (image1, image2, image3, image4, image5))
        if images is None or await turn_away(interaction, interaction.guild_id):
            return
        shape = dimensions.value if dimensions is not None else "square"
        job = await self.bot.relay.submit_blend(owner_id=interaction.user.id, guild_id=interaction.guild_id,
                                                channel_id=interaction.channel_id, images=images, dimensions=shape)
        self.bot.publisher.remember(job.id, interaction)
        await reply(interaction, queued_text(job.id, job.guild_id, job.channel_id, job.message_id))

    async def cog_app_command_error(self, interaction: discord.Interaction[RelayBot],  # type: ignore[override]
                                    error: app_commands.AppCommandError) -> None:
        await answer_failure(interaction, getattr(error, "original", error),
                             "Something went wrong; nothing was sent. Please try again.")


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(Images(bot))
