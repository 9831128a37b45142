"""/relay: the server managers' commands, as one group cog composed of the team and account command sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.relay.cog import RelayCog

if TYPE_CHECKING:
    from bot.client import RelayBot

__all__ = ["RelayCog"]


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(RelayCog(bot))
