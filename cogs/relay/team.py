"""/relay policy, gallery, quota, queue-limit and status: the team's settings and the relay's health."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits, policy
from bot.backends.base import BackendError
from bot.jobs import ACTIVE_STATES, QUEUED, ErrorKind, JobRecord
from bot.messages import plural
from cogs.common import defer, reply
from cogs.removal import ask, remove_all, removed_text

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

ACCOUNT_CHECK_SECONDS = 5.0
QUOTA_MAX = 100_000
QUEUE_MAX = 1_000
# Operator trouble shown in /relay status while no job has been accepted since it was last seen.
ACCOUNT_TROUBLE = {ErrorKind.UNAUTHORISED: "refused the bot's token",
                   ErrorKind.NO_SUBSCRIPTION: "said the account has no active subscription"}


def version() -> str:
    """The installed package's version, else the one in pyproject.toml (running from a checkout)."""
    try:
        return importlib.metadata.version("mj-relay")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


async def _set_limit(interaction: discord.Interaction[RelayBot], column: str, value: int,
                     member: discord.Member | None, name: str, amount: str, tail: str = "") -> None:
    """Set one limit for the server's default (no member) or for one member, and say what it now is."""
    assert interaction.guild_id is not None
    teams = interaction.client.store.teams
    if member is None:
        await teams.update_guild_settings(interaction.guild_id, **{column: value})
        text = f"{name} for members of this server (without one of their own): {amount}."
    else:
        await teams.update_member_limits(interaction.guild_id, member.id, **{column: value})
        text = f"{name} for {member.mention} in this server: {amount}."
    log.info("server %d: %s %d for %s", interaction.guild_id, column, value, member.id if member else "default")
    await reply(interaction, text + tail)


async def _slots_and_queue(bot: RelayBot, guild_id: int) -> str:
    relay = bot.relay
    active = await bot.store.jobs.in_states(ACTIVE_STATES)
    capacity = relay.capacity()
    slots = f"**Slots:** {len(active)} of {capacity} in use"
    if capacity < relay.max_jobs:
        slots += (f" ({relay.max_jobs} configured, halved for a while after {relay.facts.label} could not follow "
                  "a job Midjourney queued)")
    queued = await bot.store.jobs.in_states((QUEUED,))
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
    relay = bot.relay
    label = relay.facts.label
    problems: list[str] = []
    if relay.paused_reason is not None:
        problems.append(f"⛔ submissions paused: {relay.paused_reason}")
    accepted = await bot.store.jobs.last_accepted_at()
    for kind, at in sorted((await bot.store.jobs.last_error_at(ACCOUNT_TROUBLE)).items()):
        if accepted is None or at > accepted:
            problems.append(f"⚠️ {label} {ACCOUNT_TROUBLE[kind]} <t:{int(at)}:R>, and no job has been accepted since")
    try:
        async with asyncio.timeout(ACCOUNT_CHECK_SECONDS):
            accounts = await relay.backend.accounts()
    except BackendError as exc:
        if exc.kind is not ErrorKind.UNSUPPORTED:
            problems.append(f"⚠️ asking {label} about the account failed: {exc.status or exc.kind.value} "
                            f"{exc.detail}".rstrip())
    except TimeoutError:
        problems.append(f"⚠️ {label} did not answer about the account in time")
    else:
        for account in accounts:
            if account.needs_human:
                problems.append(f"⛔ Midjourney channel {account.name} has a moderation message waiting for a human")
            if account.max_jobs is not None and account.max_jobs < relay.max_jobs:
                problems.append(f"⚠️ {label}'s max jobs for channel {account.name} is {account.max_jobs}, below the "
                                f"{relay.max_jobs} configured")
    simulated = " (simulated: the embedded simulator answers)" if relay.simulated else ""
    where = f"**Backend:** {label}{simulated}"
    if not problems:
        return f"{where}\n**Account:** ✅ healthy{simulated}"
    return f"{where}\n**Account:**{simulated}\n" + "\n".join(f"- {problem}" for problem in problems)


def _mode(bot: RelayBot) -> str:
    settings = bot.settings
    if settings.PUBLIC_URL:
        return (f"**Updates:** callbacks to {settings.PUBLIC_URL}, with polling every "
                f"{settings.POLL_INTERVAL:g}s for jobs whose callbacks stop")
    return f"**Updates:** polling every {settings.POLL_INTERVAL:g}s (no PUBLIC_URL, so no callbacks)"


async def _server_settings(bot: RelayBot, guild_id: int) -> str:
    server = await bot.store.teams.guild_settings(guild_id)
    daily = bot.settings.USER_DAILY_QUOTA if server.daily_quota is None else server.daily_quota
    most = bot.settings.USER_MAX_QUEUED if server.queue_limit is None else server.queue_limit
    gallery = f"<#{server.gallery_channel_id}>" if server.gallery_channel_id else "off"
    quota = f"{daily} a day" if daily else "none"
    queue = f"{most}" if most else "none"
    speed = f"speed {server.speed} (`/relay speed`)" if server.speed else "speed as the account's (`/relay speed`)"
    return (f"**This server:** {policy.describe(server)}; gallery {gallery}; default daily quota {quota}, "
            f"queue limit {queue} (resets {limits.when(limits.next_reset(time.time()))}); {speed}")


class TeamCommands(commands.Cog):
    """The team's /relay subcommands; mixed into the /relay group cog."""

    @app_commands.command(name="policy", description="Who may use the buttons under someone else's result")
    @app_commands.describe(mode="owner: only the result's owner; role: the owner and one role; everyone: anyone",
                           role="The role that may use everyone's buttons (with mode: role)")
    async def policy_command(self, interaction: discord.Interaction[RelayBot],
                             mode: Literal["owner", "role", "everyone"], role: discord.Role | None = None) -> None:
        assert interaction.guild_id is not None
        if mode == policy.ROLE and role is None:
            await reply(interaction, "Nothing changed: `mode: role` needs the `role:` that may use everyone's "
                                     "buttons.")
            return
        if mode != policy.ROLE and role is not None:
            await reply(interaction, f"Nothing changed: `role:` only goes with `mode: role` (you chose `{mode}`).")
            return
        settings = await interaction.client.store.teams.update_guild_settings(
            interaction.guild_id, policy=mode, policy_role_id=role.id if role is not None else None)
        log.info("server %d: click policy set to %s by %d", interaction.guild_id, mode, interaction.user.id)
        await reply(interaction, f"Click policy for this server: {policy.describe(settings)}. Server managers "
                                 "always may.")

    @app_commands.command(name="gallery", description="Copy every finished upscale to a channel (none: stop)")
    @app_commands.describe(channel="The gallery channel; leave out to stop copying")
    async def gallery_command(self, interaction: discord.Interaction[RelayBot],
                              channel: discord.TextChannel | None = None) -> None:
        assert interaction.guild_id is not None
        teams = interaction.client.store.teams
        if channel is None:
            await teams.update_guild_settings(interaction.guild_id, gallery_channel_id=None)
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
        await teams.update_guild_settings(interaction.guild_id, gallery_channel_id=channel.id)
        log.info("server %d: gallery set to channel %d", interaction.guild_id, channel.id)
        await reply(interaction, f"Every finished upscale is now copied to {channel.mention}.")

    @app_commands.command(name="quota", description="Jobs a member may send to Midjourney per day (0: no limit)")
    @app_commands.describe(daily="Jobs per UTC day, imagine and buttons alike; 0 for no limit",
                           member="Only this member; leave out to set the server's default")
    async def quota_command(self, interaction: discord.Interaction[RelayBot],
                            daily: app_commands.Range[int, 0, QUOTA_MAX], member: discord.Member | None = None) -> None:
        amount = f"{daily} jobs a day" if daily else "no daily limit"
        label = interaction.client.relay.facts.label
        await _set_limit(interaction, "daily_quota", daily, member, "Daily quota", amount,
                         f" Days start at 00:00 UTC; jobs {label} refused before they ran do not count.")

    @app_commands.command(name="queue-limit", description="Jobs a member may have waiting or running (0: no limit)")
    @app_commands.rename(most="max")
    @app_commands.describe(most="Jobs waiting or running at once; 0 for no limit",
                           member="Only this member; leave out to set the server's default")
    async def queue_limit_command(self, interaction: discord.Interaction[RelayBot],
                                  most: app_commands.Range[int, 0, QUEUE_MAX],
                                  member: discord.Member | None = None) -> None:
        amount = f"at most {most} jobs waiting or running" if most else "no queue limit"
        await _set_limit(interaction, "queue_limit", most, member, "Queue limit", amount)

    @app_commands.command(name="purge", description="Remove a member's history in this server: messages and results")
    @app_commands.describe(member="The member whose jobs in this server are removed")
    async def purge_command(self, interaction: discord.Interaction[RelayBot], member: discord.Member) -> None:
        assert interaction.guild_id is not None
        bot = interaction.client
        jobs: list[JobRecord] = []
        before: int | None = None
        while page := await bot.store.jobs.list_jobs(interaction.guild_id, member.id, before_id=before, limit=200):
            jobs += page
            before = page[-1].id
        if not jobs:
            await reply(interaction, f"{member.mention} has no jobs in this server; nothing was removed.")
            return

        async def act(_: discord.Interaction[RelayBot]) -> str:
            done, deleted, links, left = await remove_all(bot, jobs, forget_prompt=True)
            log.info("server %d: history of %d purged by %d (%d jobs)", interaction.guild_id, member.id,
                     interaction.user.id, done)
            return removed_text(f"{member.mention}'s history in this server", done, deleted, links, left)

        await ask(interaction, f"Remove {member.mention}'s history in this server: {plural(len(jobs), 'job')}, "
                               "their messages, results and prompts? This cannot be undone.", "Remove it all", act)

    @app_commands.command(name="status", description="Midjourney slots, the queue, account health and mode")
    async def status_command(self, interaction: discord.Interaction[RelayBot]) -> None:
        assert interaction.guild_id is not None
        await defer(interaction)
        bot = interaction.client
        lines = ["**Midjourney relay status**", await _slots_and_queue(bot, interaction.guild_id),
                 await _account_health(bot), _mode(bot), await _server_settings(bot, interaction.guild_id),
                 f"**Version:** mj-relay {version()}"]
        await reply(interaction, "\n".join(lines))
