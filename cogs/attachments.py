"""The images a member attaches to a command, read and checked before anything is sent (bot/uploads.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord

from bot import uploads
from bot.uploads import Upload
from cogs.common import refuse

if TYPE_CHECKING:
    from bot.client import RelayBot


async def read_images(interaction: discord.Interaction[RelayBot],
                      attachments: Sequence[discord.Attachment | None]) -> list[Upload] | None:
    """The given attachments as checked images, in their order; None once the member was told why not.

    Every one is checked before any is read (their size and type as Discord reports them), then each is read
    and checked by its bytes: a job never goes out with fewer images than it was asked with.
    """
    given = [attachment for attachment in attachments if attachment is not None]
    if not given:
        return []
    refused = interaction.client.relay.images_refused()
    if refused is not None:
        await refuse(interaction, refused)
        return None
    for attachment in given:
        problem = uploads.refusal_before_reading(attachment.filename, attachment.content_type, attachment.size)
        if problem is not None:
            await refuse(interaction, problem)
            return None
    found: list[Upload] = []
    for attachment in given:
        try:
            data = await attachment.read()
        except (discord.HTTPException, discord.NotFound):
            await refuse(interaction, f"`{attachment.filename}` could not be read from Discord; attach it again.")
            return None
        checked = uploads.checked(attachment.filename, data)
        if isinstance(checked, str):
            await refuse(interaction, checked)
            return None
        found.append(checked)
    return found
