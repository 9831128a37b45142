"""Helpers shared by the cogs: answering an interaction whatever its state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot import messages, policy, render

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)


async def reply(interaction: discord.Interaction[RelayBot], text: str, *, ephemeral: bool = True) -> None:
    """Answer privately: a follow-up when the interaction is already acknowledged, else the response."""
    text = render.shorten(text, render.MESSAGE_LIMIT)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS)
        acknowledged(interaction)


def acknowledged(interaction: discord.Interaction[RelayBot]) -> None:
    """Record how much of Discord's 3-second window had passed when this interaction was acknowledged."""
    waited = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    interaction.client.metrics.ack_latency.labels(kind=interaction.type.name).observe(max(0.0, waited))


async def defer(interaction: discord.Interaction[RelayBot]) -> None:
    """Acknowledge at once, privately, before anything slow: useapi's latency must not cost the 3 s."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    acknowledged(interaction)


def queued_text(job_id: int, guild_id: int, channel_id: int, message_id: int | None) -> str:
    where = f": {messages.jump_url(guild_id, channel_id, message_id)}" if message_id else "."
    return f"Job #{job_id} is on its way{where}"


# The admin command group, `/relay ...`. Its subcommands live in the cog of their feature (cogs/admin.py,
# cogs/team.py) and attach themselves here; the bot adds the group to its tree once, after loading them.
# Hidden from non-admins by default, and checked again when run, as servers can change the default.
relay_group = app_commands.Group(
    name="relay",
    description="Manage the Midjourney relay (server managers)",
    guild_only=True,
    default_permissions=discord.Permissions(manage_guild=True),
    allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
    allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
)


async def require_admin(interaction: discord.Interaction[RelayBot]) -> bool:
    """True for a member with Manage Server; otherwise tell them why not."""
    if policy.is_admin(interaction.user):
        return True
    await reply(interaction, "This needs the Manage Server permission.")
    return False


def attach_relay_commands(commands: Iterable[app_commands.Command[Any, ..., None]], failure: str) -> None:
    """Put a cog's `/relay` subcommands on the group, each answering `failure` if it raises."""

    async def failed(interaction: discord.Interaction[RelayBot], error: app_commands.AppCommandError) -> None:
        # discord.py only logs a command's exception; the admin should hear that it did not go through.
        log.error("/relay %s failed", interaction.command.name if interaction.command else "?", exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            await reply(interaction, failure)

    for command in commands:
        command.error(failed)
        # override: a second bot in the same process (tests) loads the module again.
        relay_group.add_command(command, override=True)


def detach_relay_commands(commands: Iterable[app_commands.Command[Any, ..., None]]) -> None:
    for command in commands:
        relay_group.remove_command(command.name)
