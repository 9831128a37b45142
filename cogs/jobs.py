"""/jobs, /job and /quota: a member's own jobs in this server (an admin's view of anyone's), and their limits.

Everything here is scoped to the server the command runs in: a job made in one server is never listed,
shown or re-posted from another.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages, policy, render
from bot.backends.base import BackendError
from bot.jobs import (
    CANCELLED,
    COMPLETED,
    DUPLICATE,
    FAILED,
    MODERATED,
    QUEUED,
    RUNNING,
    SUBMITTING,
    ErrorKind,
    JobRecord,
)
from cogs.common import answer_failure, defer, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

PAGE_SIZE = 10
PROMPT_IN_LIST = 60
# A page button: whose jobs, which status ('' for all), older or newer, and the job number to page from.
PAGE_TEMPLATE = r"mj:jobs:(?P<user>[0-9]+):(?P<status>[a-z]*):(?P<direction>[on]):(?P<cursor>[0-9]+)"
# Discord signs attachment links with an expiry (`ex`, hex Unix time); renew a little before it passes.
LINK_MARGIN_SECONDS = 600
# Our job numbers: "#12" or up to 12 digits; a longer string of digits is a backend's job id (mj-proxy's).
SHORT_NUMBER = re.compile(r"#?([0-9]{1,12})")

STATE_ICONS = {
    QUEUED: "⏳", SUBMITTING: "📨", RUNNING: "🎨", COMPLETED: "✅", FAILED: "❌", MODERATED: "🚫",
    CANCELLED: "✖️", DUPLICATE: "↪️",
}
STATUS_CHOICES = [
    app_commands.Choice(name="waiting in the queue", value=QUEUED),
    app_commands.Choice(name="running", value=RUNNING),
    app_commands.Choice(name="completed", value=COMPLETED),
    app_commands.Choice(name="failed", value=FAILED),
    app_commands.Choice(name="declined by Midjourney", value=MODERATED),
    app_commands.Choice(name="cancelled", value=CANCELLED),
    app_commands.Choice(name="already done (duplicate)", value=DUPLICATE),
]


def _state(job: JobRecord) -> str:
    return f"{STATE_ICONS.get(job.status, '•')} {job.status}"


def _line(job: JobRecord, with_owner: bool) -> str:
    """One job in a `/jobs` page."""
    prompt = discord.utils.escape_markdown(render.shorten(" ".join(render.title(job).split()), PROMPT_IN_LIST))
    parts = [f"`#{job.id}`", _state(job)]
    if job.parent_id is not None:
        parts.append(f"{job.button} of #{job.parent_id}")
    if with_owner:
        parts.append(f"<@{job.owner_id}>")
    parts.append(f"<t:{int(job.created_at)}:R>")
    if job.undelivered:
        parts.append("⚠️ not posted")
    parts.append(prompt)
    if job.message_id is not None:
        parts.append(f"[open]({messages.jump_url(job.guild_id, job.channel_id, job.message_id)})")
    return " · ".join(parts)


async def _page(bot: RelayBot, guild_id: int, user_id: int, viewer_id: int, status: str | None,
                before_id: int | None = None, after_id: int | None = None) -> tuple[str, discord.ui.View | None]:
    """The text and the page buttons of one page of `user_id`'s jobs in `guild_id`, newest first."""
    store = bot.store.jobs
    if after_id is not None:
        jobs = await store.list_jobs(guild_id, user_id, status=status, after_id=after_id, limit=PAGE_SIZE)
        if len(jobs) < PAGE_SIZE:
            # Near the newest end: show a full first page rather than a short one.
            jobs = await store.list_jobs(guild_id, user_id, status=status, limit=PAGE_SIZE)
    else:
        jobs = await store.list_jobs(guild_id, user_id, status=status, before_id=before_id, limit=PAGE_SIZE)
    whose = "Your jobs" if user_id == viewer_id else f"Jobs of <@{user_id}>"
    which = f" ({status})" if status else ""
    if not jobs:
        if before_id is None and after_id is None:
            return f"{whose}{which}: none in this server yet.", None
        return f"{whose}{which}: no more jobs this way.", None
    newer = bool(await store.list_jobs(guild_id, user_id, status=status, after_id=jobs[0].id, limit=1))
    older = bool(await store.list_jobs(guild_id, user_id, status=status, before_id=jobs[-1].id, limit=1))
    lines = [f"**{whose} in this server{which}**, newest first:"]
    lines += [_line(job, with_owner=False) for job in jobs]
    lines.append("Use `/job <number>` for one job's details and buttons.")
    text = render.shorten("\n".join(lines), render.MESSAGE_LIMIT)
    if not newer and not older:
        return text, None
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="‹ Newer", custom_id=_page_id(user_id, status, "n", jobs[0].id),
                                    disabled=not newer))
    view.add_item(discord.ui.Button(label="Older ›", custom_id=_page_id(user_id, status, "o", jobs[-1].id),
                                    disabled=not older))
    # Sent as components only; JobsPageButton answers the clicks, across restarts too.
    view.stop()
    return text, view


def _page_id(user_id: int, status: str | None, direction: str, cursor: int) -> str:
    return f"mj:jobs:{user_id}:{status or ''}:{direction}:{cursor}"


class JobsPageButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=PAGE_TEMPLATE):
    """‹ Newer / Older › under a `/jobs` page."""

    def __init__(self, user_id: int, status: str, direction: str, cursor: int) -> None:
        super().__init__(discord.ui.Button(custom_id=_page_id(user_id, status, direction, cursor)))
        self.user_id = user_id
        self.status = status or None
        self.direction = direction
        self.cursor = cursor

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobsPageButton:
        return cls(int(match["user"]), match["status"], match["direction"], int(match["cursor"]))

    async def callback(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        try:
            await self._turn(interaction)
        except Exception:
            log.exception("/jobs page button failed")
            await reply(interaction, "Something went wrong turning the page; please run `/jobs` again.")

    async def _turn(self, interaction: discord.Interaction[RelayBot]) -> None:
        bot = interaction.client
        refusal = bot.refusal(interaction.guild_id)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        assert interaction.guild_id is not None
        # The page may be old: whether someone may see another member's jobs is decided now.
        if self.user_id != interaction.user.id and not policy.is_admin(interaction.user):
            await reply(interaction, "Only server managers can list another member's jobs.")
            return
        older = self.direction == "o"
        text, view = await _page(bot, interaction.guild_id, self.user_id, interaction.user.id, self.status,
                                 before_id=self.cursor if older else None,
                                 after_id=None if older else self.cursor)
        await interaction.response.edit_message(content=text, view=view, allowed_mentions=render.NO_MENTIONS)


def _link_is_fresh(url: str, now: float) -> bool:
    """False when Discord's signed attachment link has expired (or is about to)."""
    expires = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("ex")
    if not expires:
        return True
    try:
        return int(expires[0], 16) > now + LINK_MARGIN_SECONDS
    except ValueError:
        return True


async def _image_url(bot: RelayBot, job: JobRecord) -> str | None:
    """The image the bot already uploaded for `job`; a fresh link from its message once the stored one expires."""
    if job.image_url and _link_is_fresh(job.image_url, time.time()):
        return job.image_url
    if job.message_id is not None:
        channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            message = await channel.fetch_message(job.message_id)
        except discord.HTTPException as exc:
            log.info("job %d: its message could not be fetched for a fresh image link (%s)", job.id, exc.status)
        else:
            if message.attachments:
                return message.attachments[0].url
            for embed in message.embeds:
                if embed.image.url:
                    return embed.image.url
    # The bot never uploaded it (or its message is gone): the backend's own link, if it still works.
    return job.result.url if job.result is not None else None


async def _details(bot: RelayBot, job: JobRecord) -> str:
    """One job's state, in words."""
    lines = [f"**Job #{job.id}** · {_state(job)} · <@{job.owner_id}>"]
    if job.parent_id is not None:
        lines.append(f"{job.button} of job #{job.parent_id}")
    lines.append(f"Prompt: {discord.utils.escape_markdown(render.shorten(render.title(job), render.PROMPT_SHOWN))}")
    lines.extend(render.described(job))
    if job.status == QUEUED:
        place = await bot.relay.fairshare.place(job.id) or 1
        waiting = f" (waiting to be sent again: {job.error})" if job.error else ""
        lines.append(f"#{place} in line for a Midjourney slot{waiting}.")
    elif job.status == RUNNING:
        lines.append(f"Midjourney is working on it: {render.progress_bar(job.progress or 0)}")
    elif job.is_final and job.status != COMPLETED and job.error:
        lines.append(f"Why: {job.error}")
    times = [f"filed <t:{int(job.created_at)}:R>"]
    if job.finished_at is not None:
        times.append(f"finished <t:{int(job.finished_at)}:R>")
    sentence = ", ".join(times)
    lines.append(sentence[:1].upper() + sentence[1:] + ".")
    if job.backend_job_id:
        lines.append(f"{job.backend} job: `{job.backend_job_id}`")
    if job.undelivered:
        lines.append(f"⚠️ Not posted in the channel: {job.undelivered}. It is shown here instead.")
    elif job.message_id is not None:
        lines.append(f"In the channel: {messages.jump_url(job.guild_id, job.channel_id, job.message_id)}")
    if job.simulated and bot.publisher.banner:
        lines.append(bot.publisher.banner)
    return render.shorten("\n".join(lines), render.MESSAGE_LIMIT)


class Jobs(commands.Cog):
    """/jobs, /job and /quota."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your Midjourney jobs in this server, newest first")
    @app_commands.describe(status="Only jobs in this state", user="Another member's jobs (server managers)")
    @app_commands.choices(status=STATUS_CHOICES)
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def jobs(self, interaction: discord.Interaction[RelayBot],
                   status: app_commands.Choice[str] | None = None, user: discord.User | None = None) -> None:
        assert interaction.guild_id is not None
        target = user.id if user is not None else interaction.user.id
        if target != interaction.user.id and not policy.is_admin(interaction.user):
            await reply(interaction, "Only server managers can list another member's jobs; `/jobs` alone lists "
                                     "yours.")
            return
        text, view = await _page(self.bot, interaction.guild_id, target, interaction.user.id,
                                 status.value if status is not None else None)
        if view is None:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=render.NO_MENTIONS)
        else:
            await interaction.response.send_message(text, view=view, ephemeral=True,
                                                    allowed_mentions=render.NO_MENTIONS)

    @app_commands.command(name="job", description="One job's state, with its result and buttons")
    @app_commands.describe(jobid="The job number the bot shows (#12), or the backend's job id",
                           seed="Also ask Midjourney for the grid's seed (use it with --seed to start from it)")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def job(self, interaction: discord.Interaction[RelayBot],
                  jobid: app_commands.Range[str, 1, 200], seed: bool = False) -> None:
        assert interaction.guild_id is not None
        await defer(interaction)
        job = await self._find(jobid.strip())
        # A job of another server is answered exactly like an unknown one: nothing about it leaks here.
        if job is None or job.guild_id != interaction.guild_id:
            await reply(interaction, f"There is no job `{discord.utils.escape_markdown(jobid.strip())}` in this "
                                     "server. `/jobs` lists yours.")
            return
        settings = await self.bot.store.teams.guild_settings(job.guild_id)
        if policy.click_refusal(interaction.user, job, settings) is not None:
            await reply(interaction, f"Job #{job.id} belongs to <@{job.owner_id}>; only they, server managers "
                                     "and whoever this server's click policy allows can look it up.")
            return
        text = await _details(self.bot, job)
        if seed:
            text = render.shorten(f"{text}\n{await self._seed(job)}", render.MESSAGE_LIMIT)
        elif job.seed is not None:
            text = render.shorten(f"{text}\nSeed: `{job.seed}`", render.MESSAGE_LIMIT)
        if job.status != COMPLETED:
            await reply(interaction, text)
            return
        embeds: list[discord.Embed] = []
        url = await _image_url(self.bot, job)
        if url:
            embeds.append(discord.Embed(url=url, title=f"Job #{job.id}").set_image(url=url))
        views = self.bot.publisher.views(job, await self.bot.relay.used_buttons(job))
        first = views[0] if views else discord.utils.MISSING
        await interaction.followup.send(text, embeds=embeds, view=first, ephemeral=True,
                                        allowed_mentions=render.NO_MENTIONS)
        for number, view in enumerate(views[1:], start=2):
            await interaction.followup.send(f"More buttons for job #{job.id} ({number}/{len(views)})",
                                            view=view, ephemeral=True, allowed_mentions=render.NO_MENTIONS)

    async def _seed(self, job: JobRecord) -> str:
        """The grid's seed line (asked of the backend once, then kept), or why there is none."""
        if job.status != COMPLETED or job.button_named("U1") is None or not job.backend_job_id:
            return "Seed: only a finished grid (one with U1..U4) has a seed to ask for."
        try:
            value = await self.bot.relay.seed(job)
        except BackendError as exc:
            if exc.kind is ErrorKind.UNSUPPORTED:
                return f"Seed: {exc.detail}"
            return f"Seed: not available ({messages.explain(exc, self.bot.relay.facts).private})"
        return f"Seed: `{value}` (add `--seed {value}` to a prompt to start from it)"

    async def _find(self, text: str) -> JobRecord | None:
        """A job by our short number (`12` or `#12`) or by the backend's job id."""
        match = SHORT_NUMBER.fullmatch(text)
        if match is not None:
            found = await self.bot.store.jobs.get(int(match[1]))
            if found is not None:
                return found
        return await self.bot.store.jobs.by_backend_id(self.bot.relay.facts.name, text)

    @app_commands.command(name="quota", description="How many jobs you have left today, and when that resets")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def quota(self, interaction: discord.Interaction[RelayBot]) -> None:
        assert interaction.guild_id is not None
        usage = await self.bot.limits.usage(interaction.guild_id, interaction.user.id)
        await reply(interaction, f"**Your limits in this server**\n{usage.summary()}")

    async def cog_app_command_error(self, interaction: discord.Interaction[RelayBot],  # type: ignore[override]
                                    error: app_commands.AppCommandError) -> None:
        await answer_failure(interaction, getattr(error, "original", error), "Something went wrong; please try again.")


async def setup(bot: RelayBot) -> None:
    bot.add_dynamic_items(JobsPageButton)
    await bot.add_cog(Jobs(bot))
