"""/button (a job's button by command, for a job of this server or one pasted from elsewhere) and /remix
(whether a member's clicks open the prompt first)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages, prompts, render
from bot.backends.base import BackendError, BackendStatus
from bot.jobs import COMPLETED, ErrorKind, JobRecord
from cogs.buttons import click
from cogs.common import defer, refuse, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

AUTOCOMPLETE_LOOKUP_SECONDS = 2.0  # Discord drops an autocomplete answer after 3 s
LOOKUP_CACHE_SECONDS = 60.0
# A job of ours by number ("12", "#12"); anything else is taken for a backend's job id.
JOB_REF = re.compile(r"#?(?P<id>[0-9]{1,12})")


class ButtonCommands(commands.Cog):
    """/button and /remix."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        # Backend jobs looked up for autocomplete, so typing does not call the backend on every key.
        self._lookups: dict[str, tuple[tuple[str, ...], float]] = {}

    async def _find(self, text: str, guild_id: int) -> JobRecord | None:
        """A job of this server by its number ("12", "#12") or its backend job id, from the store."""
        text = text.strip()
        jobs = self.bot.store.jobs
        if match := JOB_REF.fullmatch(text):
            job = await jobs.get(int(match["id"]))
        else:
            job = await jobs.by_backend_id(self.bot.relay.facts.name, text)
        return job if job is not None and job.guild_id == guild_id else None

    async def _import(self, interaction: discord.Interaction[RelayBot], job_id: str) -> JobRecord | str:
        """A finished backend job not made here, recorded as the caller's so its buttons can be used."""
        relay = self.bot.relay
        facts = relay.facts
        try:
            truth = await relay.lookup(job_id)
        except BackendError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                kept = f"; {facts.label} keeps jobs {facts.retention_days} days" if facts.retention_days else ""
                return f"{facts.label_start} does not know job `{job_id}` (check the id{kept})."
            if exc.kind is ErrorKind.NEEDS_HUMAN:
                await relay.pause(exc, interaction.guild_id)
            return messages.explain(exc, facts).private
        if truth.status is not BackendStatus.DONE:
            return (f"Job `{job_id}` is {truth.status.value} at {facts.label}, not completed, so it has no buttons "
                    "yet.")
        assert interaction.guild_id is not None and interaction.channel_id is not None
        return await relay.import_job(guild_id=interaction.guild_id, channel_id=interaction.channel_id,
                                      owner_id=interaction.user.id, truth=truth)

    @app_commands.command(name="button", description="Use a button of a Midjourney job, by the job's id")
    @app_commands.describe(jobid="The job: its number here (e.g. 12) or a backend job id pasted from elsewhere",
                           button="One of that job's buttons, e.g. U1, V2, Zoom Out 2x, Custom Zoom",
                           prompt="The prompt to send with it: needed for Custom Zoom (with --zoom), or with Remix")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def button_command(self, interaction: discord.Interaction[RelayBot],
                             jobid: app_commands.Range[str, 1, 200], button: app_commands.Range[str, 1, 100],
                             prompt: app_commands.Range[str, 1, prompts.MODAL_TEXT_LIMIT] | None = None) -> None:
        await defer(interaction)
        assert interaction.guild_id is not None
        prompt = prompt.strip() if prompt is not None else None
        parent = await self._find(jobid, interaction.guild_id)
        if parent is None and JOB_REF.fullmatch(jobid.strip()) is None:
            found = await self._import(interaction, jobid.strip())
            if isinstance(found, str):
                await refuse(interaction, found)
                return
            parent = found
        if parent is None:
            await refuse(interaction, f"There is no job {jobid.strip()} in this server.")
            return
        await click(interaction, parent, button, prompt, by_command=True)

    @button_command.autocomplete("jobid")
    async def _jobid_choices(self, interaction: discord.Interaction[RelayBot],
                             current: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        recent = await self.bot.store.jobs.list_jobs(interaction.guild_id, interaction.user.id, status=COMPLETED,
                                                     limit=25)
        choices = []
        for job in recent:
            action = f"{job.button} of #{job.parent_id} · " if job.parent_id is not None else ""
            name = render.shorten(f"#{job.id} · {action}{render.title(job)}", 100)
            if current.strip().lstrip("#") in name:
                choices.append(app_commands.Choice(name=name, value=str(job.id)))
        return choices[:25]

    @button_command.autocomplete("button")
    async def _button_choices(self, interaction: discord.Interaction[RelayBot],
                              current: str) -> list[app_commands.Choice[str]]:
        jobid = str(getattr(interaction.namespace, "jobid", "") or "").strip()
        if not jobid or interaction.guild_id is None:
            return []
        names = await self._buttons_of(jobid, interaction.guild_id)
        wanted = current.strip().lower()
        return [app_commands.Choice(name=name, value=name) for name in names if wanted in name.lower()][:25]

    async def _buttons_of(self, jobid: str, guild_id: int) -> tuple[str, ...]:
        job = await self._find(jobid, guild_id)
        if job is not None:
            return tuple(b.name for b in job.buttons)
        if JOB_REF.fullmatch(jobid):
            return ()
        cached = self._lookups.get(jobid)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            truth = await asyncio.wait_for(self.bot.relay.lookup(jobid), AUTOCOMPLETE_LOOKUP_SECONDS)
        except (BackendError, TimeoutError):
            return ()
        names = tuple(b.name for b in truth.buttons) if truth.status is BackendStatus.DONE else ()
        self._lookups[jobid] = (names, time.monotonic() + LOOKUP_CACHE_SECONDS)
        return names

    @app_commands.command(name="remix", description="Remix: edit the prompt when you click V1-V4, Vary, arrows or 🔄")
    @app_commands.describe(state="on: those buttons open your prompt to edit first; off: they run at once")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def remix(self, interaction: discord.Interaction[RelayBot],
                    state: Literal["on", "off"] | None = None) -> None:
        store = self.bot.store
        if state is not None:
            await store.teams.set_remix(interaction.user.id, state == "on")
        mine = await store.teams.remix_enabled(interaction.user.id)
        account = await store.state.account_remix()
        if mine:
            text = ("Remix is on for you: V1-V4, Vary (Strong/Subtle), the arrows and 🔄 open your prompt to edit "
                    "before it is sent.")
            if account is False:
                text += ("\nBut the Midjourney account's Remix mode is off, so those clicks are sent with the job's "
                         "own prompt until an admin runs `/relay remix on`.")
            elif account is None:
                text += ("\nThe bot has not seen the Midjourney account's Remix mode yet; Midjourney uses your "
                         "prompt only while it is on (an admin sets it with `/relay remix on`).")
        else:
            text = "Remix is off for you: buttons run at once with the job's own prompt."
        await reply(interaction, text)


async def setup(bot: RelayBot) -> None:
    await bot.add_cog(ButtonCommands(bot))
