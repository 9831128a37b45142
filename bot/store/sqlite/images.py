"""Kept images in SQLite: the bytes a member gave with a job, and the unguessable name each is served under."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

import aiosqlite

from bot.jobs import FINAL_STATES, KeptImage
from bot.store.records import decode_image
from bot.store.sqlite.fetch import fetch_one

TOKEN_BYTES = 32  # 256 random bits: the served path cannot be guessed


class SqliteImages:
    """The `job_images` table."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def keep(self, job_id: int, images: Sequence[tuple[str, bytes]]) -> list[KeptImage]:
        """Keep `(content_type, data)` pairs for a job, in their order; the records, each with a new token."""
        now = time.time()
        kept = [KeptImage(job_id, position, content_type, data, secrets.token_urlsafe(TOKEN_BYTES), now)
                for position, (content_type, data) in enumerate(images)]
        await self._db.executemany(
            "INSERT INTO job_images (job_id, position, content_type, data, token, kept_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(k.job_id, k.position, k.content_type, k.data, k.token, k.kept_at) for k in kept])
        return kept

    async def of_job(self, job_id: int) -> list[KeptImage]:
        async with self._db.execute("SELECT * FROM job_images WHERE job_id = ? ORDER BY position", (job_id,)) as cur:
            return [decode_image(dict(row)) for row in await cur.fetchall()]

    async def by_token(self, token: str) -> KeptImage | None:
        row = await fetch_one(self._db, "SELECT * FROM job_images WHERE token = ?", (token,))
        return decode_image(dict(row)) if row else None

    async def forget(self, job_id: int) -> int:
        """Drop a job's images (it was deleted or purged); how many there were."""
        async with self._db.execute("DELETE FROM job_images WHERE job_id = ?", (job_id,)) as cur:
            return cur.rowcount

    async def forget_finished_before(self, before: float) -> int:
        """Drop the images of jobs that finished before `before`; how many went."""
        finals = tuple(sorted(FINAL_STATES))
        marks = ",".join("?" * len(finals))
        # Driven by the few kept images, each job found by its key: "job_id IN (finished jobs)" listed every
        # finished job of the history first (400 ms with 100,000 jobs, at every start).
        async with self._db.execute(
            f"""DELETE FROM job_images WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_images.job_id
                                                     AND jobs.status IN ({marks}) AND jobs.finished_at < ?)""",  # noqa: S608
            (*finals, before),
        ) as cur:
            return cur.rowcount

