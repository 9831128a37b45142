"""/relay as one group cog: the team's settings and the account's switches, for server managers only.

Discord hides the group from members without Manage Server by default, but a server can change that
default, so the cog's own `interaction_check` asks again for every subcommand: one check, not one a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import policy
from cogs.common import answer_failure, reply
from cogs.relay.account import AccountCommands
from cogs.relay.team import TeamCommands

if TYPE_CHECKING:
    from bot.client import RelayBot

FAILURE = "Something went wrong; nothing was changed. Please try again."


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
class RelayCog(TeamCommands, AccountCommands, commands.GroupCog, group_name="relay",
               group_description="Manage the Midjourney relay (server managers)"):
    """The /relay group."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[RelayBot]) -> bool:  # type: ignore[override]
        if policy.is_admin(interaction.user):
            return True
        await reply(interaction, "This needs the Manage Server permission.")
        return False

    async def cog_app_command_error(self, interaction: discord.Interaction[RelayBot],  # type: ignore[override]
                                    error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            return
        await answer_failure(interaction, getattr(error, "original", error), FAILURE)
