"""One-use links in SQLite (the region editor's): made, read, and spent by one guarded statement."""

from __future__ import annotations

import aiosqlite

from bot.jobs import OneUseLink
from bot.store.records import decode_link
from bot.store.sqlite.fetch import fetch_one


class SqliteLinks:
    """The `editor_links` table."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def create(self, link: OneUseLink) -> None:
        await self._db.execute(
            "INSERT INTO editor_links (token, job_id, member_id, created_at, expires_at, used_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (link.token, link.job_id, link.member_id, link.created_at, link.expires_at, link.used_at))

    async def get(self, token: str) -> OneUseLink | None:
        row = await fetch_one(self._db, "SELECT * FROM editor_links WHERE token = ?", (token,))
        return decode_link(dict(row)) if row else None

    async def spend(self, token: str, now: float) -> bool:
        """Mark the link used if it is unused and unexpired; whether this call did (of two racing, one does)."""
        async with self._db.execute(
            "UPDATE editor_links SET used_at = ? WHERE token = ? AND used_at IS NULL AND expires_at > ?",
            (now, token, now),
        ) as cur:
            return cur.rowcount == 1

    async def forget_expired(self, before: float) -> int:
        """Drop links that expired before `before` (used or not): they can only be refused now."""
        async with self._db.execute("DELETE FROM editor_links WHERE expires_at < ?", (before,)) as cur:
            return cur.rowcount

