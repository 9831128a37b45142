"""/relay remix, /relay reset, /relay admin-channel: the account-wide switches, for server managers.

The subcommands attach to the shared `/relay` group (cogs/common.py) when this extension loads; each checks
Manage Server again when run, as a server can change who sees the group.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot import messages
from bot.backends.useapi import errors
from bot.store import QUEUED
from cogs.buttons import account_remix, set_account_remix
from cogs.common import attach_relay_commands, defer, detach_relay_commands, reply, require_admin

if TYPE_CHECKING:
    from bot.backends.useapi.models import Job
    from bot.client import RelayBot

log = logging.getLogger(__name__)


def _reply_text(job: Job) -> str:
    """Midjourney's words in a settings job: the message content, else the first embed's description."""
    if job.content:
        return job.content
    for embed in job.embeds:
        description = embed.get("description")
        if isinstance(description, str) and description:
            return description
    return ""


async def _useapi_trouble(interaction: discord.Interaction[RelayBot], exc: errors.UseapiError) -> None:
    """Tell the admin what useapi answered; a 596 also pauses every submission."""
    if isinstance(exc, errors.PendingModMessage):
        await interaction.client.relay.pause(exc, interaction.guild_id)
    explained = messages.explain(exc)
    await reply(interaction, f"useapi refused that ({exc.status or 'no answer'}): "
                             f"{explained.admin or explained.private}")


@app_commands.command(name="remix", description="Turn the Midjourney account's Remix mode on or off")
@app_commands.describe(state="on: Remix clicks can change the prompt; off: they cannot")
async def relay_remix(interaction: discord.Interaction[RelayBot], state: Literal["on", "off"]) -> None:
    if not await require_admin(interaction):
        return
    await defer(interaction)
    bot = interaction.client
    want = state == "on"
    if await account_remix(bot.store) is want:
        await reply(interaction, f"The Midjourney account's Remix mode is already {state} (as Midjourney last "
                                 "said); nothing was sent.")
        return
    # POST jobs/remix toggles, and the state before is not known for sure: read Midjourney's answer, and
    # toggle once more if it landed on the other side.
    said = ""
    known: bool | None = None
    for _ in range(2):
        try:
            job = await bot.useapi.remix()
        except errors.UseapiError as exc:
            await _useapi_trouble(interaction, exc)
            return
        said = _reply_text(job)
        known = messages.account_remix_state(said)
        if known is None or known is want:
            break
    if known is None:
        await set_account_remix(bot.store, None)
        await reply(interaction, "Midjourney's answer did not say whether Remix is on or off, so the bot treats "
                                 f"it as unknown (members with Remix on still get the prompt box). It said: {said!r}")
        return
    await set_account_remix(bot.store, known)
    log.info("account Remix mode is now %s (set by %d)", "on" if known else "off", interaction.user.id)
    await reply(interaction, f"The Midjourney account's Remix mode is now {'on' if known else 'off'}. "
                             f"Midjourney said: {said}")


@app_commands.command(name="reset", description="Resume jobs after a human answered Midjourney's moderation message")
async def relay_reset(interaction: discord.Interaction[RelayBot]) -> None:
    if not await require_admin(interaction):
        return
    await defer(interaction)
    relay = interaction.client.relay
    was_paused = relay.paused_reason is not None
    try:
        channels = await relay.reset_account()
    except errors.UseapiError as exc:
        explained = messages.explain(exc)
        await reply(interaction, f"The reset failed; submissions stay paused. useapi answered "
                                 f"{exc.status or 'nothing'}: {explained.admin or exc.error}")
        return
    waiting = len(await interaction.client.store.jobs_in((QUEUED,)))
    log.info("account reset by %d (channels %s)", interaction.user.id, ", ".join(channels))
    before = "" if was_paused else "The bot was not paused; "
    await reply(interaction, f"{before}useapi cleared the pending moderation message on channel "
                             f"{', '.join(channels) or '(none)'}. Submissions are running again; {waiting} waiting "
                             "job(s) will be sent now.")


@app_commands.command(name="admin-channel", description="Where the relay's account alerts go (default: owner by DM)")
@app_commands.describe(channel="The channel for alerts; leave it out to send them to the server owner by DM")
async def relay_admin_channel(interaction: discord.Interaction[RelayBot],
                              channel: discord.TextChannel | None = None) -> None:
    if not await require_admin(interaction):
        return
    assert interaction.guild_id is not None
    await interaction.client.store.update_guild_settings(interaction.guild_id,
                                                         admin_channel_id=channel.id if channel else None)
    if channel is None:
        await reply(interaction, "Relay alerts (useapi account problems) now go to the server owner by DM.")
    else:
        await reply(interaction, f"Relay alerts (useapi account problems) now go to {channel.mention}.")


COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (relay_remix, relay_reset, relay_admin_channel)


async def setup(bot: RelayBot) -> None:
    attach_relay_commands(COMMANDS, "Something went wrong; please try again.")


async def teardown(bot: RelayBot) -> None:
    detach_relay_commands(COMMANDS)
