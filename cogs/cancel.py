"""❌ on a working message: its owner (or a server manager) cancels the job, as with Midjourney's own bot.

A queued job is cancelled here (nothing sent, no quota spent), a running one at the backend; the card says
so. A ❌ from anyone else changes nothing and is taken away again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot import policy, render

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)


class Cancel(commands.Cog):
    """Listens for ❌ on the relay's working messages."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if str(payload.emoji) != render.CANCEL_EMOJI or payload.guild_id is None:
            return
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        try:
            await self._cancel(payload)
        except Exception:
            # A listener's exception is only logged by discord.py; nothing else depends on this one.
            log.exception("cancel by reaction on message %d failed", payload.message_id)

    async def _cancel(self, payload: discord.RawReactionActionEvent) -> None:
        bot = self.bot
        if bot.refusal(payload.guild_id) is not None:
            return
        job = await bot.store.jobs.by_message(payload.message_id)
        if job is None or job.guild_id != payload.guild_id or job.is_final:
            return
        member = payload.member
        if member is not None and (member.id == job.owner_id or policy.is_admin(member)):
            text = await bot.relay.cancel(job.id)
            await bot.publisher.notify(job, text)
            log.info("job %d: ❌ by %d: %s", job.id, payload.user_id, text)
        await self._take_back(payload)

    async def _take_back(self, payload: discord.RawReactionActionEvent) -> None:
        """Remove the ❌, so the card stays clean (and a stranger's ❌ does not look like it did anything)."""
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        try:
            await channel.get_partial_message(payload.message_id).remove_reaction(payload.emoji,
                                                                                  discord.Object(payload.user_id))
        except discord.HTTPException as exc:
            log.info("could not take back a ❌ on message %d (%s)", payload.message_id, exc.status)


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(Cancel(bot))
