"""Helpers shared by the cogs: answering an interaction whatever its state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot import render

if TYPE_CHECKING:
    from bot.client import RelayBot


async def reply(interaction: discord.Interaction[RelayBot], text: str, *, ephemeral: bool = True) -> None:
    """Answer privately: a follow-up when the interaction is already acknowledged, else the response."""
    text = render.shorten(text, render.MESSAGE_LIMIT)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)


def queued_text(job_id: int, guild_id: int, channel_id: int, message_id: int | None) -> str:
    where = f": {render.jump_url(guild_id, channel_id, message_id)}" if message_id else "."
    return f"Job #{job_id} is on its way{where}"
