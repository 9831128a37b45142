"""Interaction tokens kept for private notices, in SQLite: any later moment of a job (a failure, a note) can
still reach its clicker privately while Discord takes follow-ups, across a restart too."""

from __future__ import annotations

import aiosqlite

from bot.jobs import Notice
from bot.store.sqlite.fetch import fetch_one


class SqliteNotices:
    """The `notices` table: one interaction per job, the latest."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def keep(self, notice: Notice) -> None:
        await self._db.execute(
            "INSERT INTO notices (job_id, token, admin, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE "
            "SET token = excluded.token, admin = excluded.admin, expires_at = excluded.expires_at",
            (notice.job_id, notice.token, int(notice.admin), notice.expires_at))

    async def forget_expired(self, now: float) -> int:
        """Forget the interactions Discord no longer takes follow-ups for (the relay's hourly housekeeping)."""
        async with self._db.execute("DELETE FROM notices WHERE expires_at < ?", (now,)) as cur:
            return max(0, cur.rowcount)

    async def get(self, job_id: int, now: float) -> Notice | None:
        """The job's interaction while Discord still takes follow-ups for it; None after."""
        row = await fetch_one(self._db, "SELECT job_id, token, admin, expires_at FROM notices WHERE job_id = ? "
                              "AND expires_at > ?", (job_id, now))
        return Notice(int(row[0]), str(row[1]), bool(row[2]), float(row[3])) if row else None
