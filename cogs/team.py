"""(being written)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.client import RelayBot


async def setup(bot: RelayBot) -> None:
    return None
