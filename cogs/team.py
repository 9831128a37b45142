"""Team settings under `/relay` (server managers): click policy, gallery, limits, and the relay's status.

The subcommands attach to the shared `/relay` group (cogs/common.py) when this extension loads. Discord hides
the group from members without Manage Server by default, but servers can change that default, so every
subcommand checks again with `require_admin` when it runs.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot import limits, policy
from bot.backends.useapi import errors
from bot.store import QUEUED, RUNNING, SUBMITTING
from cogs.common import attach_relay_commands, defer, detach_relay_commands, reply, require_admin

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

ACCOUNT_CHECK_SECONDS = 5.0
QUOTA_MAX = 100_000
QUEUE_MAX = 1_000


def version() -> str:
    """The installed package's version, else the one in pyproject.toml (running from a checkout)."""
    try:
        return importlib.metadata.version("mj-relay")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


@app_commands.command(name="policy", description="Who may use the buttons under someone else's result")
@app_commands.describe(mode="owner: only the result's owner; role: the owner and one role; everyone: anyone",
                       role="The role that may use everyone's buttons (with mode: role)")
async def policy_command(interaction: discord.Interaction[RelayBot], mode: Literal["owner", "role", "everyone"],
                         role: discord.Role | None = None) -> None:
    if not await require_admin(interaction):
        return
    assert interaction.guild_id is not None
    if mode == policy.ROLE and role is None:
        await reply(interaction, "Nothing changed: `mode: role` needs the `role:` that may use everyone's buttons.")
        return
    if mode != policy.ROLE and role is not None:
        await reply(interaction, f"Nothing changed: `role:` only goes with `mode: role` (you chose `{mode}`).")
        return
    settings = await interaction.client.store.update_guild_settings(
        interaction.guild_id, policy=mode, policy_role_id=role.id if role is not None else None)
    log.info("server %d: click policy set to %s by %d", interaction.guild_id, mode, interaction.user.id)
    await reply(interaction, f"Click policy for this server: {policy.describe(settings)}. Server managers "
                             "always may.")


@app_commands.command(name="gallery", description="Copy every finished upscale to a channel (none: stop)")
@app_commands.describe(channel="The gallery channel; leave out to stop copying")
async def gallery_command(interaction: discord.Interaction[RelayBot],
                          channel: discord.TextChannel | None = None) -> None:
    if not await require_admin(interaction):
        return
    assert interaction.guild_id is not None
    store = interaction.client.store
    if channel is None:
        await store.update_guild_settings(interaction.guild_id, gallery_channel_id=None)
        await reply(interaction, "Upscales are no longer copied to a gallery channel.")
        return
    await defer(interaction)
    # A first message proves the bot may post there, and tells the channel's readers what it is for.
    try:
        await channel.send("🖼️ This channel is now the Midjourney relay's gallery: every finished upscale is "
                           "copied here.", allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        await reply(interaction, f"Nothing changed: I cannot post in {channel.mention} (Discord answered "
                                 f"{exc.status}). Give me View Channel, Send Messages and Attach Files there.")
        return
    await store.update_guild_settings(interaction.guild_id, gallery_channel_id=channel.id)
    log.info("server %d: gallery set to channel %d", interaction.guild_id, channel.id)
    await reply(interaction, f"Every finished upscale is now copied to {channel.mention}.")


@app_commands.command(name="quota", description="Jobs a member may send to Midjourney per day (0: no limit)")
@app_commands.describe(daily="Jobs per UTC day, imagine and buttons alike; 0 for no limit",
                       member="Only this member; leave out to set the server's default")
async def quota_command(interaction: discord.Interaction[RelayBot], daily: app_commands.Range[int, 0, QUOTA_MAX],
                        member: discord.Member | None = None) -> None:
    amount = f"{daily} jobs a day" if daily else "no daily limit"
    await _set_limit(interaction, "daily_quota", daily, member, "Daily quota", amount,
                     " Days start at 00:00 UTC; jobs useapi refused before they ran do not count.")


@app_commands.command(name="queue-limit", description="Jobs a member may have waiting or running (0: no limit)")
@app_commands.rename(most="max")
@app_commands.describe(most="Jobs waiting or running at once; 0 for no limit",
                       member="Only this member; leave out to set the server's default")
async def queue_limit_command(interaction: discord.Interaction[RelayBot],
                              most: app_commands.Range[int, 0, QUEUE_MAX],
                              member: discord.Member | None = None) -> None:
    amount = f"at most {most} jobs waiting or running" if most else "no queue limit"
    await _set_limit(interaction, "queue_limit", most, member, "Queue limit", amount)


async def _set_limit(interaction: discord.Interaction[RelayBot], column: str, value: int,
                     member: discord.Member | None, name: str, amount: str, tail: str = "") -> None:
    """Set one limit for the server's default (no member) or for one member, and say what it now is."""
    if not await require_admin(interaction):
        return
    assert interaction.guild_id is not None
    store = interaction.client.store
    if member is None:
        await store.update_guild_settings(interaction.guild_id, **{column: value})
        text = f"{name} for members of this server (without one of their own): {amount}."
    else:
        await store.update_member_limits(interaction.guild_id, member.id, **{column: value})
        text = f"{name} for {member.mention} in this server: {amount}."
    log.info("server %d: %s %d for %s", interaction.guild_id, column, value, member.id if member else "default")
    await reply(interaction, text + tail)


@app_commands.command(name="status", description="Midjourney slots, the queue, account health and mode")
async def status_command(interaction: discord.Interaction[RelayBot]) -> None:
    if not await require_admin(interaction):
        return
    assert interaction.guild_id is not None
    await defer(interaction)
    bot = interaction.client
    lines = ["**Midjourney relay status**", await _slots_and_queue(bot, interaction.guild_id),
             await _account_health(bot), _mode(bot), await _server_settings(bot, interaction.guild_id),
             f"**Version:** mj-relay {version()}"]
    await reply(interaction, "\n".join(lines))


async def _slots_and_queue(bot: RelayBot, guild_id: int) -> str:
    relay = bot.relay
    active = await bot.store.jobs_in((SUBMITTING, RUNNING))
    capacity = relay.capacity()
    slots = f"**Slots:** {len(active)} of {capacity} in use"
    if capacity < bot.settings.USEAPI_MAX_JOBS:
        slots += f" (USEAPI_MAX_JOBS is {bot.settings.USEAPI_MAX_JOBS}, halved for a while after useapi's 504)"
    queued = await bot.store.jobs_in((QUEUED,))
    here = Counter(job.owner_id for job in queued if job.guild_id == guild_id)
    # The slots are shared by every server the bot serves; other servers' members are not named here.
    elsewhere = sum(1 for job in queued if job.guild_id != guild_id)
    if not queued:
        queue = "**Queue:** empty"
    else:
        people = ", ".join(f"<@{owner}> {count}" for owner, count in here.most_common())
        queue = f"**Queue:** {len(queued)} waiting" + (f": {people}" if people else "")
        if elsewhere:
            queue += f" ({elsewhere} from other servers)"
    return f"{slots}\n{queue}"


async def _account_health(bot: RelayBot) -> str:
    problems: list[str] = []
    if bot.relay.paused_reason is not None:
        problems.append(f"⛔ submissions paused: {bot.relay.paused_reason}")
    accepted = await bot.store.last_accepted_at()
    for code, at in sorted((await bot.store.last_error_at((401, 402))).items()):
        if accepted is None or at > accepted:
            meaning = "the token was refused" if code == 401 else "no active subscription"
            problems.append(f"⚠️ useapi answered {code} ({meaning}) <t:{int(at)}:R>, and no job has been "
                            "accepted since")
    try:
        async with asyncio.timeout(ACCOUNT_CHECK_SECONDS):
            accounts = await bot.useapi.account()
    except errors.UseapiError as exc:
        problems.append(f"⚠️ asking useapi about the account failed: {exc.status} {exc.error or ''}".rstrip())
    except TimeoutError:
        problems.append("⚠️ useapi did not answer about the account in time")
    else:
        for channel, account in accounts.items():
            if account.pendingModMessage:
                problems.append(f"⛔ Midjourney channel {channel} has a moderation message waiting for a human")
            if account.maxJobs is not None and account.maxJobs < bot.settings.USEAPI_MAX_JOBS:
                problems.append(f"⚠️ useapi's maxJobs for channel {channel} is {account.maxJobs}, below "
                                f"USEAPI_MAX_JOBS={bot.settings.USEAPI_MAX_JOBS}")
    simulated = " (simulated: no USEAPI_TOKEN is set)" if bot.relay.simulated else ""
    if not problems:
        return f"**Account:** ✅ healthy{simulated}"
    return f"**Account:**{simulated}\n" + "\n".join(f"- {problem}" for problem in problems)


def _mode(bot: RelayBot) -> str:
    settings = bot.settings
    if settings.PUBLIC_URL:
        return (f"**Updates:** callbacks to {settings.PUBLIC_URL}, with polling every "
                f"{settings.POLL_INTERVAL:g}s for jobs whose callbacks stop")
    return f"**Updates:** polling every {settings.POLL_INTERVAL:g}s (no PUBLIC_URL, so no callbacks)"


async def _server_settings(bot: RelayBot, guild_id: int) -> str:
    server = await bot.store.guild_settings(guild_id)
    daily = bot.settings.USER_DAILY_QUOTA if server.daily_quota is None else server.daily_quota
    most = bot.settings.USER_MAX_QUEUED if server.queue_limit is None else server.queue_limit
    gallery = f"<#{server.gallery_channel_id}>" if server.gallery_channel_id else "off"
    quota = f"{daily} a day" if daily else "none"
    queue = f"{most}" if most else "none"
    return (f"**This server:** {policy.describe(server)}; gallery {gallery}; default daily quota {quota}, "
            f"queue limit {queue} (resets {limits.when(limits.next_reset(time.time()))})")


COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (
    policy_command, gallery_command, quota_command, queue_limit_command, status_command,
)


async def setup(bot: RelayBot) -> None:
    attach_relay_commands(COMMANDS, "Something went wrong; nothing was changed. Please try again.")


async def teardown(bot: RelayBot) -> None:
    detach_relay_commands(COMMANDS)
