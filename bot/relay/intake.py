"""Intake: every way a job is filed (an /imagine with its image prompts, a /describe, a /blend, a button, a
pick from a description), each shown at once and sent by the scheduler when a slot is free.

The images a member gives are kept with the job in the same step that files it, so a job waiting in the
queue or across a restart still has them when it is sent, whatever Discord's links have expired since.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bot.backends.base import BackendFacts, Button
from bot.jobs import HELD, JobRecord
from bot.relay.display import Display
from bot.relay.images import NEEDS_PUBLIC_URL, ImageLinks
from bot.relay.tasks import JobLocks
from bot.store import Store
from bot.uploads import Upload

log = logging.getLogger(__name__)

DESCRIBE = "describe"
BLEND = "blend"
IMAGINE = "imagine"
IMAGES_GONE = ("The image of job #{job} is no longer kept (images are kept {days} days after their job finished), "
               "so it cannot be described again: give it to `/describe` once more. Nothing was sent.")


class ImagesGone(Exception):
    """The images a job was made from are no longer kept; the message is the sentence for the member."""


class Intake:
    """Files jobs: one row, its kept images, its working message, and a wake for the scheduler."""

    def __init__(self, *, store: Store, facts: BackendFacts, simulated: bool, display: Display, locks: JobLocks,
                 wake: asyncio.Event, links: ImageLinks, images_by_link: bool, kept_days: int,
                 lease: Callable[[], float]) -> None:
        self._store = store
        self._facts = facts
        self._simulated = simulated
        self._display = display
        self._locks = locks
        self._wake = wake
        self._links = links
        self._images_by_link = images_by_link
        self._kept_days = kept_days
        self._lease = lease  # when a lease taken now ends

    def images_refused(self) -> str | None:
        """Why images cannot be sent with this backend here (it fetches links, and there is no PUBLIC_URL)."""
        if self._images_by_link and self._links.base is None:
            return NEEDS_PUBLIC_URL.format(label_start=self._facts.label_start)
        return None

    async def imagine(self, *, owner_id: int, guild_id: int, channel_id: int, prompt: str,
                      images: Sequence[Upload] = ()) -> JobRecord:
        """File a new /imagine job (with its image prompts, kept) and show its working message."""
        return await self._new(owner_id, guild_id, channel_id, prompt, IMAGINE, images)

    async def describe(self, *, owner_id: int, guild_id: int, channel_id: int, image: Upload) -> JobRecord:
        """File a /describe of one image (kept): the prompts Midjourney suggests for it come back as its card."""
        return await self._new(owner_id, guild_id, channel_id, "", DESCRIBE, [image])

    async def blend(self, *, owner_id: int, guild_id: int, channel_id: int, images: Sequence[Upload],
                    dimensions: str) -> JobRecord:
        """File a /blend of two to five images (kept) into a grid of `dimensions`."""
        return await self._new(owner_id, guild_id, channel_id, "", BLEND, images, dimensions=dimensions)

    async def describe_again(self, *, owner_id: int, channel_id: int, parent: JobRecord) -> JobRecord:
        """🔄 under a description: the same kept image described again, as the clicker's job."""
        kept = await self._store.images.of_job(parent.id)
        if not kept:
            raise ImagesGone(IMAGES_GONE.format(job=parent.id, days=self._kept_days))
        again = [Upload(image.data, image.content_type, f"image of #{parent.id}") for image in kept[:1]]
        return await self._new(owner_id, parent.guild_id, channel_id, "", DESCRIBE, again)

    async def button(self, *, owner_id: int, guild_id: int, channel_id: int, parent: JobRecord, button: Button,
                     prompt: str | None, mask: bytes | None = None) -> JobRecord:
        """File a click of `button` on `parent`, with the prompt a modal gave and the region's mask, if any.

        A one-shot button with a job already waiting, running or made on `parent` raises `OneShotTaken`.
        """
        job = await self._store.jobs.create(
            guild_id=guild_id, channel_id=channel_id, owner_id=owner_id, prompt=prompt or parent.prompt,
            backend=self._facts.name, parent_id=parent.id, button=button, button_prompt=prompt,
            one_shot=button.name in self._facts.one_shot, simulated=self._simulated, action=parent.action,
            dimensions=parent.dimensions, not_before=HELD if mask is not None else 0.0, holder=self._holder())
        if mask is not None:
            # The region is kept with the job like any image a member gives: sent with its prompt, even after a
            # restart between the press and the prompt.
            job = await self._keep(job, [("image/png", mask)])
        return await self._file(job)

    async def _new(self, owner_id: int, guild_id: int, channel_id: int, prompt: str, action: str,
                   images: Sequence[Upload], *, dimensions: str | None = None) -> JobRecord:
        job = await self._store.jobs.create(guild_id=guild_id, channel_id=channel_id, owner_id=owner_id,
                                            prompt=prompt, backend=self._facts.name, simulated=self._simulated,
                                            action=action, dimensions=dimensions,
                                            not_before=HELD if images else 0.0, holder=self._holder())
        if images:
            job = await self._keep(job, [(image.content_type, image.data) for image in images])
        return await self._file(job)

    def _holder(self) -> tuple[int, float]:
        """A new job is held by this process from the row's creation: it keeps the job's images and posts its
        working message, and no other process takes the job over meanwhile."""
        return self._store.coordination.me, self._lease()

    async def _keep(self, job: JobRecord, images: Sequence[tuple[str, bytes]]) -> JobRecord:
        """Keep a held job's images, then release it to the scheduler: it never goes out without them."""
        await self._store.images.keep(job.id, images)
        released = await self._store.jobs.requeue(job.id, 0.0)
        return released or job

    async def _file(self, job: JobRecord) -> JobRecord:
        log.info("job %d filed: owner=%d guild=%d kind=%s button=%s", job.id, job.owner_id, job.guild_id,
                 job.kind, job.button)
        async with self._locks(job.id):
            job = await self._display.show(job)
        self._wake.set()
        return job
