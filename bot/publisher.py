"""The Discord side of the relay's `Publisher`: posting and editing job cards with the bot token.

Results go to the channel with the bot token, not as interaction follow-ups: an interaction token lives
15 minutes and Midjourney jobs can take longer. Follow-ups are only used for private words to a clicker.
"""

from __future__ import annotations

import io
import logging
import time

import discord

from bot import images, render
from bot.images import ImageError, ImageFile
from bot.relay import PublishError, Shown
from bot.store import COMPLETED, JobRecord, Store
from bot.useapi.models import Job

log = logging.getLogger(__name__)

INTERACTION_LIFETIME = 14 * 60  # Discord's 15 minutes, less a margin for the call itself
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class DiscordPublisher:
    """Shows jobs in their channels; remembers recent interactions to answer their owners privately."""

    def __init__(self, client: discord.Client, store: Store) -> None:
        self.client = client
        self.store = store
        self._interactions: dict[int, tuple[discord.Interaction, float]] = {}
        self._alerted: set[tuple[int | None, str]] = set()

    def remember(self, job_id: int, interaction: discord.Interaction) -> None:
        """Keep the interaction that made job `job_id`, to tell its owner privately what happens."""
        now = time.monotonic()
        self._interactions = {k: v for k, v in self._interactions.items() if v[1] > now}
        self._interactions[job_id] = (interaction, now + INTERACTION_LIFETIME)

    def _channel(self, job: JobRecord) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    def _upload_limit(self, guild_id: int) -> int:
        guild = self.client.get_guild(guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    async def show_pending(self, job: JobRecord, note: str | None) -> int | None:
        position = await self.store.queue_position(job) if job.status == "queued" else None
        content = render.pending_content(job, note, position)
        channel = self._channel(job)
        try:
            if job.message_id is not None:
                try:
                    await channel.get_partial_message(job.message_id).edit(content=content,
                                                                           allowed_mentions=render.NO_MENTIONS)
                    return job.message_id
                except discord.NotFound:
                    log.info("job %d: working message %d is gone; posting a new one", job.id, job.message_id)
            message = await channel.send(content, allowed_mentions=render.NO_MENTIONS)
            return message.id
        except discord.NotFound:
            log.warning("job %d: channel %d is gone", job.id, job.channel_id)
            return None
        except discord.HTTPException as exc:
            raise PublishError(f"Discord answered {exc.status}") from exc

    async def show_final(self, job: JobRecord, image: ImageFile | None, note: str | None) -> Shown:
        pages = render.button_pages(job.buttons) if job.status == COMPLETED else []
        used = await self._used_buttons(job)
        content = render.final_content(job, note)
        embeds: list[discord.Embed] = []
        files: list[discord.File] = []
        if image is not None:
            try:
                fitted = images.fit(image, self._upload_limit(job.guild_id))
                files.append(discord.File(io.BytesIO(fitted.data), filename=fitted.filename))
            except ImageError as exc:
                log.warning("job %d: %s; linking the image instead", job.id, exc)
                image = None
        if job.status == COMPLETED and image is None and job.job_json:
            url = Job.model_validate(job.job_json).image_url
            if url:
                embeds.append(discord.Embed(url=url, title="Result image").set_image(url=url))
        first_view = render.build_view(job, pages[0], used) if pages else None
        channel = self._channel(job)
        try:
            message = await self._post_or_edit(job, channel, content, embeds, files, first_view)
            extra: list[int] = []
            for number, page in enumerate(pages[1:], start=2):
                more = await channel.send(f"More buttons for job #{job.id} ({number}/{len(pages)})",
                                          view=render.build_view(job, page, used),
                                          allowed_mentions=render.NO_MENTIONS)
                extra.append(more.id)
        except discord.HTTPException as exc:
            raise PublishError(f"Discord answered {exc.status}") from exc
        image_url = message.attachments[0].url if message.attachments else None
        return Shown(message.id, image_url, tuple(extra))

    async def _post_or_edit(self, job: JobRecord, channel: discord.PartialMessageable, content: str,
                            embeds: list[discord.Embed], files: list[discord.File],
                            view: discord.ui.View | None) -> discord.Message:
        if job.message_id is not None:
            try:
                # Editing the working message makes publishing idempotent: a repeat shows the same card.
                return await channel.get_partial_message(job.message_id).edit(
                    content=content, embeds=embeds, attachments=files, view=view,
                    allowed_mentions=render.NO_MENTIONS)
            except discord.NotFound:
                log.info("job %d: message %d is gone; posting the result anew", job.id, job.message_id)
                for file in files:
                    file.reset()
        if view is None:
            return await channel.send(content, embeds=embeds, files=files, allowed_mentions=render.NO_MENTIONS)
        return await channel.send(content, embeds=embeds, files=files, view=view,
                                  allowed_mentions=render.NO_MENTIONS)

    async def _used_buttons(self, job: JobRecord) -> frozenset[str]:
        """U1..U4 already clicked on this job, from our store and from useapi's `children`."""
        used = {child.button for child in await self.store.children_of(job.id)
                if child.button and child.status not in {"failed", "moderated", "cancelled", "duplicate"}}
        if job.job_json:
            used.update(child.button for child in Job.model_validate(job.job_json).children if child.button)
        return frozenset(name for name in used if name in {"U1", "U2", "U3", "U4"})

    async def notify(self, job: JobRecord, text: str) -> None:
        entry = self._interactions.get(job.id)
        if entry is None or entry[1] < time.monotonic():
            return
        interaction = entry[0]
        try:
            await interaction.followup.send(render.shorten(f"Job #{job.id}: {text}", render.MESSAGE_LIMIT),
                                            ephemeral=True, allowed_mentions=render.NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("job %d: private note not delivered (%s)", job.id, exc.status)

    async def alert_admins(self, guild_id: int | None, text: str) -> None:
        if (guild_id, text) in self._alerted:
            return
        self._alerted.add((guild_id, text))
        guild = self.client.get_guild(guild_id) if guild_id is not None else None
        if guild is None:
            log.warning("admin alert with no server to tell: %s", text)
            return
        admin_channel = (await self.store.guild_settings(guild.id)).admin_channel_id
        try:
            if admin_channel is not None:
                await self.client.get_partial_messageable(admin_channel, guild_id=guild.id).send(
                    f"⚠️ Relay alert: {text}", allowed_mentions=render.NO_MENTIONS)
                return
            if guild.owner_id is not None:
                owner = await self.client.fetch_user(guild.owner_id)
                await owner.send(f"⚠️ Relay alert for **{guild.name}**: {text}")
        except discord.HTTPException as exc:
            log.warning("admin alert not delivered (%s): %s", exc.status, text)
