"""Helpers shared by the cogs: answering an interaction whatever its state, and the limits a member meets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot import messages, render

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

ANSWERED_FAILURE = "relay_failure_answered"  # set in interaction.extras once a failure was answered


async def reply(interaction: discord.Interaction[RelayBot], text: str, *, ephemeral: bool = True) -> None:
    """Answer privately: a follow-up when the interaction is already acknowledged, else the response."""
    text = render.shorten(text, render.MESSAGE_LIMIT)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)
        acknowledged(interaction)


async def refuse(interaction: discord.Interaction[RelayBot], problem: str) -> None:
    """Answer a request that was not carried out: why, and that nothing was sent (said once)."""
    await reply(interaction, messages.nothing_sent(problem))


def acknowledged(interaction: discord.Interaction[RelayBot]) -> None:
    """Record how much of Discord's 3-second window had passed when this interaction was acknowledged."""
    waited = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    interaction.client.metrics.ack_latency.labels(kind=interaction.type.name).observe(max(0.0, waited))


async def defer(interaction: discord.Interaction[RelayBot]) -> None:
    """Acknowledge at once, privately, before anything slow: the backend's latency must not cost the 3 s."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    acknowledged(interaction)


def queued_text(job_id: int, guild_id: int, channel_id: int, message_id: int | None) -> str:
    where = f": {messages.jump_url(guild_id, channel_id, message_id)}" if message_id else "."
    return f"Job #{job_id} is on its way{where}"


# What the bot needs in a channel to show a job there: the working message, the uploaded result, its embeds
# (a preview, a link) and the message it edits.
NEEDED_HERE = (("view_channel", "View Channel"), ("send_messages", "Send Messages"), ("attach_files", "Attach Files"),
               ("embed_links", "Embed Links"), ("read_message_history", "Read Message History"))


def missing_here(interaction: discord.Interaction[RelayBot]) -> list[str]:
    """The permissions the bot lacks in this interaction's channel to show a job there (Discord resolved them)."""
    granted = interaction.app_permissions
    missing = [name for flag, name in NEEDED_HERE if not getattr(granted, flag)]
    if isinstance(interaction.channel, discord.Thread) and not granted.send_messages_in_threads:
        missing.append("Send Messages in Threads")
    return missing


async def cannot_post_here(interaction: discord.Interaction[RelayBot]) -> bool:
    """True (having told the member what is missing) when the bot could not show a job in this channel: checked
    before anything is sent, so no Midjourney time is spent on a result nobody could see."""
    missing = missing_here(interaction)
    if not missing:
        return False
    await refuse(interaction, f"I cannot show results in this channel: I am missing {', '.join(missing)} here. "
                              "A server manager can grant them in the channel's or my role's permissions.")
    return True


async def turn_away(interaction: discord.Interaction[RelayBot], guild_id: int) -> bool:
    """True (having told the member why, privately) when a limit stops them filing a job in `guild_id`."""
    refusal = await interaction.client.limits.admit(guild_id, interaction.user.id)
    if refusal is None:
        return False
    await reply(interaction, refusal)
    return True


async def answer_failure(interaction: discord.Interaction[RelayBot], error: BaseException, text: str) -> None:
    """Log a command or component that raised, and tell the member in `text`, once, whatever was answered before.

    discord.py only logs such exceptions; without this a deferred command would stay on "thinking…".
    """
    if interaction.extras.get(ANSWERED_FAILURE):
        return
    interaction.extras[ANSWERED_FAILURE] = True
    what = interaction.command.qualified_name if interaction.command else interaction.type.name
    log.error("/%s failed", what, exc_info=error)
    try:
        await reply(interaction, text)
    except discord.HTTPException:
        log.info("could not tell the member that /%s failed", what)
