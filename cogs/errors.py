"""The end of the one error chain for slash commands: Command.error → the cog's cog_app_command_error →
CommandTree.on_error, set here. A cog with words of its own answers first (see `answer_failure`); whatever
nobody answered gets the general sentence, so no command is ever left on "thinking…"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import answer_failure

if TYPE_CHECKING:
    from bot.client import RelayBot

GENERAL_FAILURE = "Something went wrong; please try again."


class Errors(commands.Cog):
    """Owns the tree's error handler while loaded, and gives the tree's own back when unloaded."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        self._previous: Any = None

    async def cog_load(self) -> None:
        self._previous = self.bot.tree.on_error
        self.bot.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    async def on_app_command_error(self, interaction: discord.Interaction[RelayBot],
                                   error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            return  # a check already told the member why (the tree's, a cog's interaction_check)
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await answer_failure(interaction, original, GENERAL_FAILURE)


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(Errors(bot))
