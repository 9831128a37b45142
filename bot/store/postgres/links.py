"""One-use links in PostgreSQL (the region editor's), as `bot.store.sqlite.links` keeps them."""

from __future__ import annotations

from bot.jobs import OneUseLink
from bot.store.postgres.connect import Pool, changed
from bot.store.records import decode_link


class PostgresLinks:
    """The `editor_links` table."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(self, link: OneUseLink) -> None:
        await self._pool.execute(
            "INSERT INTO editor_links (token, job_id, member_id, created_at, expires_at, used_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            link.token, link.job_id, link.member_id, link.created_at, link.expires_at, link.used_at)

    async def get(self, token: str) -> OneUseLink | None:
        row = await self._pool.fetchrow("SELECT * FROM editor_links WHERE token = $1", token)
        return decode_link(dict(row)) if row else None

    async def spend(self, token: str, now: float) -> bool:
        """Mark the link used if it is unused and unexpired; whether this call did (of two racing, one does)."""
        return changed(await self._pool.execute(
            "UPDATE editor_links SET used_at = $1 WHERE token = $2 AND used_at IS NULL AND expires_at > $1",
            now, token)) == 1

    async def forget_expired(self, before: float) -> int:
        """Drop links that expired before `before` (used or not): they can only be refused now."""
        return changed(await self._pool.execute("DELETE FROM editor_links WHERE expires_at < $1", before))

