"""The Discord side of the relay's `Publisher`: posting and editing job cards with the bot token.

Results go to the channel with the bot token, not as interaction follow-ups: an interaction token lives
15 minutes and Midjourney jobs can take longer. Follow-ups are only used for private words to a clicker.
Everything shown comes from the relay's cards; nothing here reads the store's jobs. The interactions kept for
private words are written to the store's notices too: with several processes, the one with something to tell
is seldom the one that took the click. Everything here works through Discord's REST API alone, so a process
standing by (no gateway, no cache of servers) posts and edits as well as the one holding the gateway.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time

import aiohttp
import discord

from bot import messages, policy, render
from bot.jobs import COMPLETED, QUEUED, RUNNING, JobRecord, Notice
from bot.relay import FinalCard, MessageGone, PublishError, Shown
from bot.store.base import NoticeStore

log = logging.getLogger(__name__)

INTERACTION_LIFETIME = 14 * 60  # Discord's 15 minutes, less a margin for the call itself
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


def _publish_error(exc: discord.HTTPException) -> PublishError:
    # 403: Missing Access / Missing Permissions (the channel's permissions changed): retrying will not help.
    return PublishError(f"Discord answered {exc.status} ({exc.text or 'no reason'})", refused=exc.status == 403)


class DiscordPublisher:
    """Shows jobs in their channels; remembers recent interactions to answer their owners privately."""

    def __init__(self, client: discord.Client, identity: str, banner: str = "", *,
                 notices: NoticeStore | None = None, session: aiohttp.ClientSession | None = None) -> None:
        self.client = client
        self.identity = identity
        self.banner = banner
        self._interactions: dict[int, tuple[discord.Interaction, float]] = {}
        self._notices = notices
        self._session = session
        self._keeping: set[asyncio.Task[None]] = set()
        self._limits: dict[int, int] = {}  # upload limits asked of Discord, for servers the cache lacks

    def remember(self, job_id: int, interaction: discord.Interaction) -> None:
        """Keep the interaction that made job `job_id`, to tell its owner privately what happens."""
        now = time.monotonic()
        self._interactions = {k: v for k, v in self._interactions.items() if v[1] > now}
        self._interactions[job_id] = (interaction, now + INTERACTION_LIFETIME)
        if self._notices is not None:
            notice = Notice(job_id, interaction.token, policy.is_admin(interaction.user),
                            time.time() + INTERACTION_LIFETIME)
            task = asyncio.get_running_loop().create_task(self._keep(notice), name=f"notice-{job_id}")
            self._keeping.add(task)
            task.add_done_callback(self._keeping.discard)

    async def _keep(self, notice: Notice) -> None:
        assert self._notices is not None
        try:
            await self._notices.keep(notice)
        except Exception:
            # Only this process can tell the clicker privately then; the job's card says it to everyone.
            log.warning("job %d: its interaction could not be kept for private notices", notice.job_id,
                        exc_info=True)

    async def close(self) -> None:
        """Let the interactions being kept be written."""
        if self._keeping:
            await asyncio.wait(self._keeping, timeout=5)

    def _channel(self, job: JobRecord) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def _guild(self, guild_id: int) -> discord.Guild | None:
        """The server from the gateway's cache, else from Discord (a process standing by has no cache)."""
        guild = self.client.get_guild(guild_id)
        if guild is not None:
            return guild
        try:
            return await self.client.fetch_guild(guild_id)
        except discord.HTTPException as exc:
            log.info("server %d could not be read (%s)", guild_id, exc.status)
            return None

    async def upload_limit(self, guild_id: int) -> int:
        limit = self._limits.get(guild_id)
        if limit is None:
            guild = await self._guild(guild_id)
            if guild is None:
                return DEFAULT_UPLOAD_LIMIT
            limit = guild.filesize_limit
            if self.client.get_guild(guild_id) is None:
                self._limits[guild_id] = limit  # asked over REST: not again for every result
        return limit

    def views(self, job: JobRecord, used: frozenset[str]) -> list[discord.ui.View]:
        """The job's buttons as one view a message (five rows each)."""
        return [render.build_view(job, self.identity, page, used) for page in render.button_pages(job)]

    async def show_pending(self, job: JobRecord, note: str | None, place: int | None) -> int | None:
        content = render.pending_content(job, note, place if job.status == QUEUED else None, self.banner)
        # Midjourney's blurry preview while it works, as Midjourney shows it: linked, not uploaded.
        embeds = [render.preview_embed(job.preview_url)] if job.preview_url and job.status == RUNNING else []
        channel = self._channel(job)
        try:
            if job.message_id is not None:
                try:
                    await channel.get_partial_message(job.message_id).edit(content=content, embeds=embeds,
                                                                           allowed_mentions=render.NO_MENTIONS)
                    return job.message_id
                except discord.NotFound:
                    log.info("job %d: working message %d is gone; posting a new one", job.id, job.message_id)
            message = await channel.send(content, embeds=embeds, allowed_mentions=render.NO_MENTIONS)
            return message.id
        except discord.NotFound:
            log.warning("job %d: channel %d is gone", job.id, job.channel_id)
            return None
        except discord.HTTPException as exc:
            raise _publish_error(exc) from exc

    async def show_final(self, card: FinalCard) -> Shown:
        job = card.job
        views = self.views(job, card.used)
        content = render.final_content(job, card.note, self.banner)
        files = [discord.File(io.BytesIO(card.file.data), filename=card.file.filename)] if card.file else []
        embeds = [render.result_embed(card.link)] if job.status == COMPLETED and not files and card.link else []
        channel = self._channel(job)
        try:
            message = await self._post_or_edit(job, channel, content, embeds, files, views[0] if views else None)
            extra: list[int] = []
            # A publish repeated after a crash edits the card again (idempotent); the extra pages are new
            # messages, so each carries a nonce that Discord (enforce_nonce) answers with the first copy.
            for number, view in enumerate(views[1:], start=2):
                more = await channel.send(f"More buttons for job #{job.id} ({number}/{len(views)})", view=view,
                                          allowed_mentions=render.NO_MENTIONS, nonce=f"p{job.id}.{number}")
                extra.append(more.id)
        except discord.HTTPException as exc:
            raise _publish_error(exc) from exc
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
                # Not posted here: the relay first records a new message's id, then edits the result into
                # it, so a crash in between cannot leave the result posted twice.
                raise MessageGone(f"message {job.message_id} is gone") from None
        if view is None:
            return await channel.send(content, embeds=embeds, files=files, allowed_mentions=render.NO_MENTIONS)
        return await channel.send(content, embeds=embeds, files=files, view=view,
                                  allowed_mentions=render.NO_MENTIONS)

    async def redraw_buttons(self, job: JobRecord, used: frozenset[str]) -> None:
        channel = self._channel(job)
        message_ids = (job.message_id, *job.extra_message_ids)
        for message_id, page in zip(message_ids, render.button_pages(job), strict=False):
            if message_id is None or not any(job.buttons[index].name in used for row in page for index in row):
                continue
            try:
                await channel.get_partial_message(message_id).edit(
                    view=render.build_view(job, self.identity, page, used))
            except discord.HTTPException as exc:
                # Cosmetic only: the button works either way (a repeat click is answered with a link).
                log.info("job %d: used buttons not redrawn (%s)", job.id, exc.status)

    async def copy_to_gallery(self, card: FinalCard, channel_id: int, shown: Shown) -> int | None:
        job = card.job
        link = messages.jump_url(job.guild_id, job.channel_id, shown.message_id) if shown.message_id else ""
        content = render.shorten(f"{render.final_content(job, None, self.banner)}\n{link}", render.MESSAGE_LIMIT)
        channel = self.client.get_partial_messageable(channel_id, guild_id=job.guild_id)
        # Recorded only once Discord made it; should the process die in between, the repeat carries the same
        # nonce, which Discord (enforce_nonce) answers with the first copy, not a second.
        nonce = f"g{job.id}"
        try:
            if card.file is not None:
                # Uploaded again rather than linked: attachment links are signed and expire.
                file = discord.File(io.BytesIO(card.file.data), filename=card.file.filename)
                sent = await channel.send(content, file=file, allowed_mentions=render.NO_MENTIONS, nonce=nonce)
            else:
                url = shown.image_url or card.link
                embeds = [render.result_embed(url)] if url else []
                sent = await channel.send(content, embeds=embeds, allowed_mentions=render.NO_MENTIONS, nonce=nonce)
        except discord.HTTPException as exc:
            log.warning("job %d: not copied to the gallery channel %d (%s)", job.id, channel_id, exc.status)
            return None
        return sent.id

    async def delete_messages(self, job: JobRecord, gallery_channel_id: int | None) -> int:
        """Delete the job's card, its extra button pages and its gallery copy; how many were deleted."""
        deleted = 0
        where = [(job.channel_id, message_id) for message_id in (job.message_id, *job.extra_message_ids) if message_id]
        if job.gallery_message_id is not None and gallery_channel_id is not None:
            where.append((gallery_channel_id, job.gallery_message_id))
        for channel_id, message_id in where:
            try:
                await self.client.get_partial_messageable(channel_id, guild_id=job.guild_id).get_partial_message(
                    message_id).delete()
                deleted += 1
            except discord.NotFound:
                continue  # already gone
            except discord.HTTPException as exc:
                log.info("job %d: message %d not deleted (%s)", job.id, message_id, exc.status)
        return deleted

    async def notify(self, job: JobRecord, text: str, admin_text: str | None = None) -> None:
        """Tell the clicker privately, through the interaction's follow-up webhook: the one this process took, else
        the one another process kept in the store. Where neither still works (15 minutes passed), the member
        sees what happened on the job's public card, which says it too."""
        followup, admin = await self._followup(job.id)
        if followup is None:
            return
        if admin_text is not None and admin:
            text = admin_text
        try:
            await followup.send(render.shorten(f"Job #{job.id}: {text}", render.MESSAGE_LIMIT), ephemeral=True,
                                allowed_mentions=render.NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("job %d: private note not delivered (%s)", job.id, exc.status)

    async def _followup(self, job_id: int) -> tuple[discord.Webhook | None, bool]:
        entry = self._interactions.get(job_id)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0].followup, policy.is_admin(entry[0].user)
        notice = await self._notices.get(job_id, time.time()) if self._notices is not None else None
        if notice is None or self._session is None or self.client.application_id is None:
            return None, False
        # The same follow-up webhook discord.py makes from an interaction (type 3: an application's).
        webhook = discord.Webhook({"id": self.client.application_id, "type": 3, "token": notice.token},
                                  session=self._session)
        return webhook, notice.admin

    async def alert_admins(self, guild_id: int | None, admin_channel_id: int | None, text: str) -> None:
        # The relay decides how often (once per episode of a problem); this only delivers.
        guild = await self._guild(guild_id) if guild_id is not None else None
        if guild is None:
            log.warning("admin alert with no server to tell: %s", text)
            return
        try:
            if admin_channel_id is not None:
                await self.client.get_partial_messageable(admin_channel_id, guild_id=guild.id).send(
                    f"⚠️ Relay alert: {text}", allowed_mentions=render.NO_MENTIONS)
                return
            if guild.owner_id is not None:
                owner = await self.client.fetch_user(guild.owner_id)
                await owner.send(f"⚠️ Relay alert for **{guild.name}**: {text}")
        except discord.HTTPException as exc:
            log.warning("admin alert not delivered (%s): %s", exc.status, text)
