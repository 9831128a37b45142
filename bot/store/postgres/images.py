"""Kept images in PostgreSQL, as `bot.store.sqlite.images` keeps them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from bot.jobs import FINAL_STATES, KeptImage
from bot.store.postgres.connect import Pool, changed
from bot.store.records import decode_image
from bot.store.sqlite.images import TOKEN_BYTES


class PostgresImages:
    """The `job_images` table."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def keep(self, job_id: int, images: Sequence[tuple[str, bytes]]) -> list[KeptImage]:
        """Keep `(content_type, data)` pairs for a job, in their order; the records, each with a new token."""
        now = time.time()
        kept = [KeptImage(job_id, position, content_type, data, secrets.token_urlsafe(TOKEN_BYTES), now)
                for position, (content_type, data) in enumerate(images)]
        await self._pool.executemany(
            "INSERT INTO job_images (job_id, position, content_type, data, token, kept_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(k.job_id, k.position, k.content_type, k.data, k.token, k.kept_at) for k in kept])
        return kept

    async def of_job(self, job_id: int) -> list[KeptImage]:
        rows = await self._pool.fetch("SELECT * FROM job_images WHERE job_id = $1 ORDER BY position", job_id)
        return [decode_image(dict(row)) for row in rows]

    async def by_token(self, token: str) -> KeptImage | None:
        row = await self._pool.fetchrow("SELECT * FROM job_images WHERE token = $1", token)
        return decode_image(dict(row)) if row else None

    async def forget(self, job_id: int) -> int:
        """Drop a job's images (it was deleted or purged); how many there were."""
        return changed(await self._pool.execute("DELETE FROM job_images WHERE job_id = $1", job_id))

    async def forget_finished_before(self, before: float) -> int:
        """Drop the images of jobs that finished before `before`; how many went."""
        return changed(await self._pool.execute(
            """DELETE FROM job_images WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_images.job_id
                                                    AND jobs.status = ANY($1::text[]) AND jobs.finished_at < $2)""",
            sorted(FINAL_STATES), before))


