"""Vary (Region) through the bot's own editor: the one-use link a click gives, and the editor's hooks.

A click on Vary (Region) costs nothing: it makes a link for that member and that job (bot/editor), kept in
the database so that any process serves the page. Only a submit, which spends the link, files the press,
with the member's prompt and the mask they marked kept with it as the job's image; the scheduler then
presses the button and gives the prompt and the mask in the backend's modal step, as with any other job.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.editor import EditorLink, EditorUnavailable, Original, editor_url, new_link
from bot.jobs import COMPLETED, JobRecord, OneUseLink
from bot.media import MediaError, MediaPreparer
from bot.relay.intake import Intake
from bot.store import Store

log = logging.getLogger(__name__)

ORIGINALS_KEPT = 8  # originals held in memory: the page, its image and the submit each ask for one
GONE = ("This job's picture is no longer available, so its region cannot be marked. Press Vary (Region) again "
        "on a job that is still shown.")
NOT_COMPLETED = "Job #{job} is {status} now, so its region cannot be redrawn."

Admission = Callable[[int, int], Awaitable[str | None]]  # (guild, member) → why they may not start a job now


def _moment(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class DatabaseLinks:
    """The editor's `LinkStore` over the relay's database (its times are aware datetimes; the store's, seconds)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, link: EditorLink) -> None:
        await self._store.links.create(OneUseLink(link.token, int(link.job_id), link.member_id,
                                                  link.created_at.timestamp(), link.expires_at.timestamp()))

    async def get(self, token: str) -> EditorLink | None:
        found = await self._store.links.get(token)
        if found is None:
            return None
        return EditorLink(found.token, str(found.job_id), found.member_id, _moment(found.created_at),
                          _moment(found.expires_at), None if found.used_at is None else _moment(found.used_at))

    async def spend(self, token: str, now: datetime) -> bool:
        return await self._store.links.spend(token, now.timestamp())


class RegionEditor:
    """The relay's side of the editor (`bot.editor.EditorHooks`) and the links a click hands out."""

    def __init__(self, *, store: Store, intake: Intake, media: MediaPreparer, public_url: str | None,
                 buttons: frozenset[str], admit: Admission) -> None:
        self._store = store
        self._intake = intake
        self._media = media
        self._public_url = public_url
        self._buttons = buttons  # the backend's buttons that take a region (its Vary (Region))
        self._admit = admit
        self.links = DatabaseLinks(store)
        self._originals: OrderedDict[int, Original] = OrderedDict()

    async def link_for(self, job: JobRecord, member_id: int) -> str | None:
        """A fresh link to the editor for `member_id` on `job`; None when the listener has no public address."""
        if self._public_url is None:
            return None
        link = new_link(str(job.id), member_id, datetime.now(UTC))
        await self.links.create(link)
        log.info("job %d: region editor link made for %d", job.id, member_id)
        return editor_url(self._public_url, link.token)

    async def _job(self, link: EditorLink) -> JobRecord:
        job = await self._store.jobs.get(int(link.job_id))
        if job is None or job.result is None or job.result.kind != "image":
            raise EditorUnavailable(GONE)
        if job.status != COMPLETED:
            raise EditorUnavailable(NOT_COMPLETED.format(job=job.id, status=job.status))
        return job

    async def original(self, link: EditorLink) -> Original:
        job = await self._job(link)
        cached = self._originals.get(job.id)
        if cached is not None:
            self._originals.move_to_end(job.id)
            return cached
        assert job.result is not None
        try:
            data, kind, width, height = await self._media.picture(job.result.url)
        except MediaError as exc:
            log.warning("job %d: the region editor's original could not be fetched (%s)", job.id, exc)
            raise EditorUnavailable(GONE) from None
        found = Original(data, kind, width, height, job.prompt)
        self._originals[job.id] = found
        while len(self._originals) > ORIGINALS_KEPT:
            self._originals.popitem(last=False)
        return found

    async def submit(self, link: EditorLink, prompt: str, mask_png: bytes) -> str:
        job = await self._job(link)
        button = next((b for b in job.buttons if b.name in self._buttons), None)
        if button is None:
            raise EditorUnavailable(f"Job #{job.id} has no Vary (Region) button.")
        # The click was allowed by the server's click policy; the member's queue and quota are checked now,
        # when the job is filed, as for any click.
        refused = await self._admit(job.guild_id, link.member_id)
        if refused is not None:
            raise EditorUnavailable(f"{refused} The link is used up: press {button.name} again later.")
        made = await self._intake.button(owner_id=link.member_id, guild_id=job.guild_id, channel_id=job.channel_id,
                                         parent=job, button=button, prompt=prompt, mask=mask_png)
        log.info("job %d: %s of job %d sent from the editor by %d", made.id, button.name, job.id, link.member_id)
        return (f"Sent: Midjourney redraws the region as job #{made.id}, which appears in the channel like any "
                "other job. You can close this page.")
