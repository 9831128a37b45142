"""The Discord side of the relay's `Publisher`: posting and editing job cards with the bot token.

Results go to the channel with the bot token, not as interaction follow-ups: an interaction token lives
15 minutes and Midjourney jobs can take longer. Follow-ups are only used for private words to a clicker.
"""

from __future__ import annotations

import io
import logging
import time

import discord

from bot import images, messages, policy, render
from bot.backends.useapi.models import Job
from bot.images import ImageError, ImageFile
from bot.relay import MessageGone, PublishError, Shown
from bot.store import COMPLETED, JobRecord, Store

log = logging.getLogger(__name__)

INTERACTION_LIFETIME = 14 * 60  # Discord's 15 minutes, less a margin for the call itself
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


def is_upscale(job: JobRecord) -> bool:
    """A single upscaled image: U1..U4 of a grid, or any Upscale (...) / Redo Upscale (...) of an upscale."""
    button = job.button or ""
    return button in render.UPSCALE_BUTTONS or button.startswith(("Upscale (", "Redo Upscale ("))


class DiscordPublisher:
    """Shows jobs in their channels; remembers recent interactions to answer their owners privately."""

    def __init__(self, client: discord.Client, store: Store) -> None:
        self.client = client
        self.store = store
        self._interactions: dict[int, tuple[discord.Interaction, float]] = {}

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

    async def show_pending(self, job: JobRecord, note: str | None, position: int | None = None) -> int | None:
        if position is None and job.status == "queued":
            position = await self.store.queue_position(job)
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
        uploaded: ImageFile | None = None
        if image is not None:
            try:
                fitted = images.fit(image, self._upload_limit(job.guild_id))
                files.append(discord.File(io.BytesIO(fitted.data), filename=fitted.filename))
                uploaded = fitted
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
            # A publish repeated after a crash edits the card again (idempotent); the extra pages are new
            # messages, so each carries a nonce that Discord (enforce_nonce) answers with the first copy.
            for number, page in enumerate(pages[1:], start=2):
                more = await channel.send(f"More buttons for job #{job.id} ({number}/{len(pages)})",
                                          view=render.build_view(job, page, used),
                                          allowed_mentions=render.NO_MENTIONS, nonce=f"p{job.id}.{number}")
                extra.append(more.id)
        except discord.HTTPException as exc:
            raise PublishError(f"Discord answered {exc.status}") from exc
        image_url = message.attachments[0].url if message.attachments else None
        if job.status == COMPLETED and job.parent_id is not None and job.button in render.UPSCALE_BUTTONS:
            await self._refresh_used(job.parent_id)
        if job.status == COMPLETED and is_upscale(job):
            await self._cross_post(job, message, uploaded)
        return Shown(message.id, image_url, tuple(extra))

    async def _cross_post(self, job: JobRecord, message: discord.Message, image: ImageFile | None) -> None:
        """Copy a finished upscale to the server's gallery channel, once; the result never waits on it."""
        gallery = (await self.store.guild_settings(job.guild_id)).gallery_channel_id
        if gallery is None or gallery == job.channel_id:
            return
        # Publishing is retried (and repeated after a restart) until recorded: remember the copy was made.
        key = f"gallery:{job.id}"
        if await self.store.get_meta(key) is not None:
            return
        link = messages.jump_url(job.guild_id, job.channel_id, message.id)
        content = render.shorten(f"{render.final_content(job)}\n{link}", render.MESSAGE_LIMIT)
        channel = self.client.get_partial_messageable(gallery, guild_id=job.guild_id)
        # The copy is recorded only once Discord made it; should the process die in between, the repeat
        # carries the same nonce, which Discord (enforce_nonce) answers with the first copy, not a second.
        nonce = f"g{job.id}"
        try:
            if image is not None:
                # Uploaded again rather than linked: attachment links are signed and expire.
                sent = await channel.send(content, file=discord.File(io.BytesIO(image.data), filename=image.filename),
                                          allowed_mentions=render.NO_MENTIONS, nonce=nonce)
            else:
                url = message.attachments[0].url if message.attachments else None
                if url is None and job.job_json:
                    url = Job.model_validate(job.job_json).image_url
                embeds = [discord.Embed(url=url, title="Result image").set_image(url=url)] if url else []
                sent = await channel.send(content, embeds=embeds, allowed_mentions=render.NO_MENTIONS, nonce=nonce)
        except discord.HTTPException as exc:
            log.warning("job %d: not copied to the gallery channel %d (%s)", job.id, gallery, exc.status)
            return
        await self.store.set_meta(key, str(sent.id))
        log.info("job %d: copied to the gallery as message %d", job.id, sent.id)

    async def _refresh_used(self, parent_id: int) -> None:
        """Re-draw a parent's buttons so a U button whose upscale now exists shows as used, as Midjourney does."""
        parent = await self.store.get_job(parent_id)
        if parent is None or parent.status != COMPLETED or not parent.published or parent.message_id is None:
            return
        used = await self._used_buttons(parent)
        channel = self._channel(parent)
        message_ids = (parent.message_id, *parent.extra_message_ids)
        for message_id, page in zip(message_ids, render.button_pages(parent.buttons), strict=False):
            if not any(parent.buttons[index] in used for row in page for index in row):
                continue
            try:
                await channel.get_partial_message(message_id).edit(view=render.build_view(parent, page, used))
            except discord.HTTPException as exc:
                # Cosmetic only: the button works either way (a repeat click is answered with a link).
                log.info("job %d: used buttons not redrawn (%s)", parent.id, exc.status)

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
                # Not posted here: the relay first records a new message's id, then edits the result into
                # it, so a crash in between cannot leave the result posted twice.
                raise MessageGone(f"message {job.message_id} is gone") from None
        if view is None:
            return await channel.send(content, embeds=embeds, files=files, allowed_mentions=render.NO_MENTIONS)
        return await channel.send(content, embeds=embeds, files=files, view=view,
                                  allowed_mentions=render.NO_MENTIONS)

    async def used_buttons(self, job: JobRecord) -> frozenset[str]:
        """U1..U4 already used on `job`, for any other view of its buttons (`/job` re-posts it)."""
        return await self._used_buttons(job)

    async def _used_buttons(self, job: JobRecord) -> frozenset[str]:
        """U1..U4 already clicked on this job, from our store and from useapi's `children`."""
        used = {child.button for child in await self.store.children_of(job.id)
                if child.button and child.status not in {"failed", "moderated", "cancelled", "duplicate"}}
        if job.job_json:
            used.update(child.button for child in Job.model_validate(job.job_json).children if child.button)
        return frozenset(name for name in used if name in render.UPSCALE_BUTTONS)

    async def notify(self, job: JobRecord, text: str, admin_text: str | None = None) -> None:
        entry = self._interactions.get(job.id)
        if entry is None or entry[1] < time.monotonic():
            # The token expired (15 minutes) or the bot restarted: the job's public card says what happened.
            return
        interaction = entry[0]
        if admin_text is not None and policy.is_admin(interaction.user):
            text = admin_text
        try:
            await interaction.followup.send(render.shorten(f"Job #{job.id}: {text}", render.MESSAGE_LIMIT),
                                            ephemeral=True, allowed_mentions=render.NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("job %d: private note not delivered (%s)", job.id, exc.status)

    async def alert_admins(self, guild_id: int | None, text: str) -> None:
        # The relay decides how often (once per episode of a problem); this only delivers.
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
