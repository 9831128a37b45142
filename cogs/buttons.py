"""The job buttons under every result, restart-proof; the Custom Zoom and Remix modals; /button and /remix.

Each button's custom_id holds the local job number and the button's index in that job's `buttons`; the
DynamicItem below matches it after any restart, so no view has to be kept in memory. Everything useapi
would refuse is checked here first, so a refusal names its reason and costs no useapi call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits, messages, policy, render
from bot.backends.useapi import errors
from bot.store import COMPLETED, JobRecord, Store
from cogs.common import acknowledged, defer, queued_text, reply

if TYPE_CHECKING:
    from bot.client import RelayBot

log = logging.getLogger(__name__)

PROMPT_LIMIT = 2048  # useapi's newer page; the prompt a button is sent with
MODAL_TEXT_LIMIT = 4000  # Discord's text input maximum: longer than useapi's, so "too long" gets our reason
ZOOM_PARAMETER = re.compile(r"--zoom\s+(\S+)")
# The buttons that take a prompt while Midjourney's Remix mode is on (jobs/button page).
REMIX_BUTTONS = frozenset({"V1", "V2", "V3", "V4", "Vary (Strong)", "Vary (Subtle)", "⬅️", "➡️", "⬆️", "⬇️", "🔄"})
CUSTOM_ZOOM = "Custom Zoom"
# What Midjourney last said about the account's Remix mode ("on"/"off"); absent: not known.
ACCOUNT_REMIX_KEY = "account_remix"
AUTOCOMPLETE_LOOKUP_SECONDS = 2.0  # Discord drops an autocomplete answer after 3 s
LOOKUP_CACHE_SECONDS = 60.0
JOB_REF = re.compile(r"#?(?P<id>[0-9]{1,12})")


async def account_remix(store: Store) -> bool | None:
    """The account's Remix mode as Midjourney last reported it, or None when the bot does not know."""
    value = await store.get_meta(ACCOUNT_REMIX_KEY)
    return {"on": True, "off": False}.get(value or "")


async def set_account_remix(store: Store, enabled: bool | None) -> None:
    """Remember what Midjourney said about Remix mode; None: its answer could not be read."""
    await store.set_meta(ACCOUNT_REMIX_KEY, "unknown" if enabled is None else "on" if enabled else "off")


def custom_zoom_default(prompt: str) -> str:
    """The parent's prompt with `--zoom 2` in place of any zoom it had."""
    return f"{ZOOM_PARAMETER.sub('', prompt).strip()} --zoom 2"


def check_custom_zoom(prompt: str) -> str | None:
    """Why a Custom Zoom prompt would be refused, or None when it is fine."""
    if not prompt.strip():
        return "The prompt is empty."
    if len(prompt) > PROMPT_LIMIT:
        return f"The prompt is {len(prompt)} characters; useapi accepts at most {PROMPT_LIMIT}."
    zooms = ZOOM_PARAMETER.findall(prompt)
    if len(zooms) != 1:
        return "Custom Zoom needs exactly one `--zoom` value between 1 and 2, e.g. `--zoom 1.5`."
    try:
        value = float(zooms[0])
    except ValueError:
        return f"`--zoom {zooms[0]}` is not a number: use a value between 1 and 2."
    if not 1.0 <= value <= 2.0:
        return f"`--zoom {zooms[0]}` is out of range: use a value between 1 and 2."
    return None


def check_prompt(button: str, prompt: str | None, account_remix_on: bool | None) -> str | None:
    """Why `prompt` may not go with `button`, or None. None for prompt means "no prompt given"."""
    if button == CUSTOM_ZOOM:
        if prompt is None:
            return "Custom Zoom needs a prompt with `--zoom` between 1 and 2, e.g. the job's prompt and `--zoom 2`."
        return check_custom_zoom(prompt)
    if prompt is None:
        return None
    if button not in REMIX_BUTTONS:
        return (f"`{button}` does not take a prompt: only Custom Zoom does, and with Remix on V1-V4, Vary, "
                "the arrows and 🔄.")
    if not prompt.strip():
        return "The prompt is empty."
    if len(prompt) > PROMPT_LIMIT:
        return f"The prompt is {len(prompt)} characters; useapi accepts at most {PROMPT_LIMIT}."
    if account_remix_on is False:
        return (f"The Midjourney account's Remix mode is off, so Midjourney would ignore a prompt for `{button}`. "
                "An admin can turn it on with `/relay remix on`.")
    return None


async def check_click(bot: RelayBot, user: discord.abc.User, guild_id: int | None, parent: JobRecord | None,
                      button: str) -> str | None:
    """Every local reason not to send `button` of `parent` for `user` (before any useapi call), or None."""
    # A job is only ever acted on in the server it was made in.
    if parent is None or parent.guild_id != guild_id:
        return "This bot does not know that job."
    refused = policy.click_refusal(user, parent, await bot.store.guild_settings(parent.guild_id))
    if refused is not None:
        return refused
    if parent.status != COMPLETED or not parent.useapi_jobid:
        return f"Job #{parent.id} is {parent.status}, not completed, so its buttons cannot be used."
    if button not in parent.buttons:
        offered = ", ".join(parent.buttons) or "none"
        return f"`{button}` is not one of job #{parent.id}'s buttons (it has: {offered})."
    return bot.relay.reply_problem()


async def existing_upscale(bot: RelayBot, parent: JobRecord, button: str) -> JobRecord | None:
    """The finished, shown result a U button already made on `parent`, if our store has one."""
    if button not in render.UPSCALE_BUTTONS:
        return None
    for child in await bot.store.children_of(parent.id):
        if child.button == button and child.status == COMPLETED and child.published and child.message_id:
            return child
    return None


async def submit_click(interaction: discord.Interaction[RelayBot], parent: JobRecord, button: str,
                       prompt: str | None, note: str | None = None) -> None:
    """Send a click on through the relay and tell the clicker where its result will appear."""
    if not interaction.response.is_done():
        await defer(interaction)
    assert interaction.channel_id is not None
    bot = interaction.client
    if await limits.turn_away(interaction, parent.guild_id):
        return
    job = await bot.relay.submit_button(owner_id=interaction.user.id, guild_id=parent.guild_id,
                                        channel_id=interaction.channel_id, parent=parent, button=button,
                                        prompt=prompt)
    bot.publisher.remember(job.id, interaction)
    text = queued_text(job.id, job.guild_id, job.channel_id, job.message_id)
    if bot.relay.paused_reason is not None:
        text += f"\nIt waits: {bot.relay.paused_reason}"
    if note:
        text += f"\n{note}"
    await reply(interaction, text)


async def click(interaction: discord.Interaction[RelayBot], parent: JobRecord | None, button: str,
                prompt: str | None = None, *, by_command: bool = False) -> None:
    """One click, from a button or from /button: check it, open a modal if it needs one, or send it."""
    bot = interaction.client
    problem = await check_click(bot, interaction.user, interaction.guild_id, parent, button)
    if problem is not None:
        await reply(interaction, f"Nothing was sent. {problem}")
        return
    assert parent is not None
    done = await existing_upscale(bot, parent, button)
    if done is not None and done.message_id is not None:
        # Not an error: useapi would answer 409; the result is already in the channel.
        link = messages.jump_url(done.guild_id, done.channel_id, done.message_id)
        await reply(interaction, messages.duplicate(button, parent.id, link))
        return
    remix_state = await account_remix(bot.store)
    if by_command:
        problem = check_prompt(button, prompt, remix_state)
        if problem is not None:
            await reply(interaction, f"Nothing was sent. {problem}")
            return
        await submit_click(interaction, parent, button, prompt)
        return
    if button == CUSTOM_ZOOM:
        await interaction.response.send_modal(PromptModal(parent, button, custom_zoom_default(parent.prompt)))
        acknowledged(interaction)
        return
    if button in REMIX_BUTTONS and await bot.store.remix_enabled(interaction.user.id):
        if remix_state is False:
            note = ("Your Remix is on, but the Midjourney account's Remix mode is off, so this was sent with the "
                    "job's own prompt. An admin can turn it on with `/relay remix on`.")
            await submit_click(interaction, parent, button, None, note)
            return
        await interaction.response.send_modal(PromptModal(parent, button, parent.prompt))
        acknowledged(interaction)
        return
    log.info("job %d: %s clicked by %d", parent.id, button, interaction.user.id)
    await submit_click(interaction, parent, button, None)


class PromptModal(discord.ui.Modal):
    """Custom Zoom, or a Remix click: the prompt the button is sent with, pre-filled from the parent job."""

    def __init__(self, parent: JobRecord, button: str, default: str) -> None:
        kind = "zoom" if button == CUSTOM_ZOOM else "remix"
        title = "Custom Zoom" if button == CUSTOM_ZOOM else render.shorten(f"Remix: {button} of job #{parent.id}", 45)
        super().__init__(title=title, custom_id=f"mj:{kind}:{parent.id}:{time.time_ns()}")
        self.parent = parent
        self.button = button
        label = "Prompt (with --zoom between 1 and 2)" if button == CUSTOM_ZOOM else "Prompt"
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=label, style=discord.TextStyle.paragraph, default=render.shorten(default, MODAL_TEXT_LIMIT),
            max_length=MODAL_TEXT_LIMIT)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        bot = interaction.client
        value = self.prompt.value.strip()
        parent = await bot.store.get_job(self.parent.id)
        problem = await check_click(bot, interaction.user, interaction.guild_id, parent, self.button)
        if problem is None:
            problem = check_prompt(self.button, value, await account_remix(bot.store))
        if problem is not None:
            await reply(interaction, f"Nothing was sent. {problem}")
            return
        assert parent is not None
        log.info("job %d: %s sent with a prompt by %d", parent.id, self.button, interaction.user.id)
        await submit_click(interaction, parent, self.button, value)

    async def on_error(self, interaction: discord.Interaction[RelayBot], error: Exception,  # type: ignore[override]
                       /) -> None:
        log.exception("%s modal failed", self.button, exc_info=error)
        await reply(interaction, "Something went wrong sending that; nothing was lost, please try again.")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=render.CUSTOM_ID_TEMPLATE):
    """Any button under any job the relay has shown."""

    def __init__(self, job_id: int, index: int) -> None:
        super().__init__(discord.ui.Button(custom_id=render.custom_id(job_id, index)))
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        return cls(int(match["job"]), int(match["index"]))

    async def callback(self, interaction: discord.Interaction[RelayBot]) -> None:  # type: ignore[override]
        # discord.py only logs errors raised here, so the button answers its own failures.
        try:
            await self._click(interaction)
        except Exception:
            log.exception("click on job %d button %d failed", self.job_id, self.index)
            await reply(interaction, "Something went wrong with that click; nothing was sent.")

    async def _click(self, interaction: discord.Interaction[RelayBot]) -> None:
        bot = interaction.client
        refusal = bot.refusal(interaction.guild_id)
        if refusal is not None:
            await reply(interaction, refusal)
            return
        parent = await bot.store.get_job(self.job_id)
        if parent is not None and self.index >= len(parent.buttons):
            await reply(interaction, f"Job #{parent.id} has no such button.")
            return
        button = parent.buttons[self.index] if parent is not None else ""
        await click(interaction, parent, button)


def _created(job_json: dict[str, Any]) -> float | None:
    value = job_json.get("created")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Buttons(commands.Cog):
    """/button (a job's button by command) and /remix (the per-member Remix setting)."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        # useapi jobids looked up for autocomplete, so typing does not call useapi on every key.
        self._lookups: dict[str, tuple[tuple[str, ...], float]] = {}

    async def _find(self, text: str, guild_id: int) -> JobRecord | None:
        """A job of this server by its number ("12", "#12") or its useapi jobid, from the store."""
        text = text.strip()
        if match := JOB_REF.fullmatch(text):
            job = await self.bot.store.get_job(int(match["id"]))
        else:
            job = await self.bot.store.get_by_useapi_jobid(text)
        return job if job is not None and job.guild_id == guild_id else None

    async def _import(self, interaction: discord.Interaction[RelayBot], jobid: str) -> JobRecord | str:
        """A completed useapi job not made here, recorded as the caller's so its buttons can be used."""
        try:
            truth = await self.bot.useapi.get_job(jobid)
        except errors.JobNotFound:
            return f"useapi does not know job `{jobid}` (check the id; useapi keeps jobs 31 days)."
        except errors.PendingModMessage as exc:
            await self.bot.relay.pause(exc, interaction.guild_id)
            return messages.explain(exc).private
        except errors.UseapiError as exc:
            return messages.explain(exc).private
        if truth.status != "completed":
            return f"Job `{jobid}` is {truth.status or 'unknown'} at useapi, not completed, so it has no buttons yet."
        assert interaction.guild_id is not None and interaction.channel_id is not None
        job_json = self.bot.relay.mask(truth.model_dump())
        return await self.bot.store.import_job(
            guild_id=interaction.guild_id, channel_id=interaction.channel_id, owner_id=interaction.user.id,
            useapi_jobid=truth.jobid, prompt=truth.prompt or "", buttons=truth.buttons, job_json=job_json,
            created_at=_created(job_json), simulated=self.bot.relay.simulated)

    @app_commands.command(name="button", description="Use a button of a Midjourney job, by the job's id")
    @app_commands.describe(jobid="The job: its number here (e.g. 12) or a useapi jobid pasted from elsewhere",
                           button="One of that job's buttons, e.g. U1, V2, Zoom Out 2x, Custom Zoom",
                           prompt="The prompt to send with it: needed for Custom Zoom (with --zoom), or with Remix")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def button_command(self, interaction: discord.Interaction[RelayBot],
                             jobid: app_commands.Range[str, 1, 200], button: app_commands.Range[str, 1, 100],
                             prompt: app_commands.Range[str, 1, MODAL_TEXT_LIMIT] | None = None) -> None:
        await defer(interaction)
        assert interaction.guild_id is not None
        prompt = prompt.strip() if prompt is not None else None
        parent = await self._find(jobid, interaction.guild_id)
        if parent is None and JOB_REF.fullmatch(jobid.strip()) is None:
            found = await self._import(interaction, jobid.strip())
            if isinstance(found, str):
                await reply(interaction, f"Nothing was sent. {found}")
                return
            parent = found
        if parent is None:
            await reply(interaction, f"Nothing was sent. There is no job {jobid.strip()} in this server.")
            return
        await click(interaction, parent, button, prompt, by_command=True)

    @button_command.autocomplete("jobid")
    async def _jobid_choices(self, interaction: discord.Interaction[RelayBot],
                             current: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        recent = await self.bot.store.list_jobs(interaction.guild_id, interaction.user.id, status=COMPLETED,
                                                limit=25)
        choices = []
        for job in recent:
            action = f"{job.button} of #{job.parent_id} · " if job.parent_id is not None else ""
            name = render.shorten(f"#{job.id} · {action}{job.prompt}", 100)
            if current.strip().lstrip("#") in name:
                choices.append(app_commands.Choice(name=name, value=str(job.id)))
        return choices[:25]

    @button_command.autocomplete("button")
    async def _button_choices(self, interaction: discord.Interaction[RelayBot],
                              current: str) -> list[app_commands.Choice[str]]:
        jobid = str(getattr(interaction.namespace, "jobid", "") or "").strip()
        if not jobid or interaction.guild_id is None:
            return []
        buttons = await self._buttons_of(jobid, interaction.guild_id)
        wanted = current.strip().lower()
        return [app_commands.Choice(name=name, value=name) for name in buttons if wanted in name.lower()][:25]

    async def _buttons_of(self, jobid: str, guild_id: int) -> tuple[str, ...]:
        job = await self._find(jobid, guild_id)
        if job is not None:
            return job.buttons
        if JOB_REF.fullmatch(jobid):
            return ()
        cached = self._lookups.get(jobid)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            truth = await asyncio.wait_for(self.bot.useapi.get_job(jobid), AUTOCOMPLETE_LOOKUP_SECONDS)
        except (errors.UseapiError, TimeoutError):
            return ()
        buttons = tuple(truth.buttons) if truth.status == "completed" else ()
        self._lookups[jobid] = (buttons, time.monotonic() + LOOKUP_CACHE_SECONDS)
        return buttons

    @app_commands.command(name="remix", description="Remix: edit the prompt when you click V1-V4, Vary, arrows or 🔄")
    @app_commands.describe(state="on: those buttons open your prompt to edit first; off: they run at once")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def remix(self, interaction: discord.Interaction[RelayBot],
                    state: Literal["on", "off"] | None = None) -> None:
        store = self.bot.store
        if state is not None:
            await store.set_remix(interaction.user.id, state == "on")
        mine = await store.remix_enabled(interaction.user.id)
        account = await account_remix(store)
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
    bot.add_dynamic_items(JobButton)
    await bot.add_cog(Buttons(bot))
