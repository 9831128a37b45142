"""/relay remix, /relay speed, /relay reset, /relay admin-channel: the account-wide switches, for server managers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages
from bot.backends.base import BackendError
from bot.jobs import QUEUED, ErrorKind
from cogs.common import defer, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)


async def _backend_trouble(interaction: discord.Interaction[RelayBot], exc: BackendError) -> None:
    """Tell the admin what the backend answered; an account that needs a human also pauses every submission."""
    relay = interaction.client.relay
    if exc.kind is ErrorKind.NEEDS_HUMAN:
        await relay.pause(exc, interaction.guild_id)
    if exc.kind is ErrorKind.UNSUPPORTED:
        await reply(interaction, exc.detail)
        return
    explained = messages.explain(exc, relay.facts)
    await reply(interaction, f"{relay.facts.label_start} refused that ({exc.status or 'no answer'}): "
                             f"{explained.admin or explained.private}")


class AccountCommands(commands.Cog):
    """The account-wide /relay subcommands; mixed into the /relay group cog."""

    @app_commands.command(name="remix", description="Turn the Midjourney account's Remix mode on or off")
    @app_commands.describe(state="on: Remix clicks can change the prompt; off: they cannot")
    async def relay_remix(self, interaction: discord.Interaction[RelayBot], state: Literal["on", "off"]) -> None:
        await defer(interaction)
        bot = interaction.client
        want = state == "on"
        if await bot.store.state.account_remix() is want:
            await reply(interaction, f"The Midjourney account's Remix mode is already {state} (as Midjourney last "
                                     "said); nothing was sent.")
            return
        # The backend toggles, and the state before is not known for sure: read Midjourney's answer, and toggle
        # once more if it landed on the other side.
        said = ""
        known: bool | None = None
        for _ in range(2):
            try:
                said = await bot.relay.backend.toggle_remix()
            except BackendError as exc:
                await _backend_trouble(interaction, exc)
                return
            known = messages.account_remix_state(said)
            if known is None or known is want:
                break
        if known is None:
            await bot.store.state.set_account_remix(None)
            await reply(interaction, "Midjourney's answer did not say whether Remix is on or off, so the bot treats "
                                     f"it as unknown (members with Remix on still get the prompt box). It said: "
                                     f"{said!r}")
            return
        await bot.store.state.set_account_remix(known)
        log.info("account Remix mode is now %s (set by %d)", "on" if known else "off", interaction.user.id)
        await reply(interaction, f"The Midjourney account's Remix mode is now {'on' if known else 'off'}. "
                                 f"Midjourney said: {said}")

    @app_commands.command(name="speed", description="The speed Midjourney runs this server's jobs at")
    @app_commands.describe(speed="fast (the plan's fast hours), relax (slower, unmetered) or turbo (fastest, costs "
                                 "more fast time)")
    async def relay_speed(self, interaction: discord.Interaction[RelayBot],
                          speed: Literal["fast", "relax", "turbo"]) -> None:
        await defer(interaction)
        assert interaction.guild_id is not None
        relay = interaction.client.relay
        try:
            said = await relay.set_speed(interaction.guild_id, speed)
        except BackendError as exc:
            await _backend_trouble(interaction, exc)
            return
        log.info("speed set to %s by %d in server %d", speed, interaction.user.id, interaction.guild_id)
        if relay.facts.account_speed:
            where = (f"for the whole {relay.facts.account} (every server and job using it), from the next job on")
        else:
            where = "for this server's jobs, from the next one sent"
        answer = f" {relay.facts.label_start} said: {said}" if said else ""
        await reply(interaction, f"Midjourney's speed is now **{speed}** {where}.{answer}")

    @app_commands.command(name="reset",
                          description="Resume jobs after a human answered Midjourney's moderation message")
    async def relay_reset(self, interaction: discord.Interaction[RelayBot]) -> None:
        await defer(interaction)
        relay = interaction.client.relay
        was_paused = relay.paused_reason is not None
        try:
            channels = await relay.reset_account()
        except BackendError as exc:
            if exc.kind is ErrorKind.UNSUPPORTED:
                await reply(interaction, exc.detail)
                return
            explained = messages.explain(exc, relay.facts)
            await reply(interaction, f"The reset failed; submissions stay paused. {relay.facts.label} answered "
                                     f"{exc.status or 'nothing'}: {explained.admin or exc.detail}")
            return
        waiting = len(await interaction.client.store.jobs.in_states((QUEUED,)))
        log.info("account reset by %d (channels %s)", interaction.user.id, ", ".join(channels))
        before = "" if was_paused else "The bot was not paused; "
        who = relay.facts.label_start if was_paused else relay.facts.label
        await reply(interaction, f"{before}{who} cleared the pending moderation message on channel "
                                 f"{', '.join(channels) or '(none)'}. Submissions are running again; {waiting} "
                                 "waiting job(s) will be sent now.")

    @app_commands.command(name="admin-channel",
                          description="Where the relay's account alerts go (default: owner by DM)")
    @app_commands.describe(channel="The channel for alerts; leave it out to send them to the server owner by DM")
    async def relay_admin_channel(self, interaction: discord.Interaction[RelayBot],
                                  channel: discord.TextChannel | None = None) -> None:
        assert interaction.guild_id is not None
        await interaction.client.store.teams.update_guild_settings(interaction.guild_id,
                                                                   admin_channel_id=channel.id if channel else None)
        label = interaction.client.relay.facts.label
        if channel is None:
            await reply(interaction, f"Relay alerts ({label} account problems) now go to the server owner by DM.")
        else:
            await reply(interaction, f"Relay alerts ({label} account problems) now go to {channel.mention}.")
