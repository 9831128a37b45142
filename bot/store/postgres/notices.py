"""Interaction tokens kept for private notices, in PostgreSQL, as `bot.store.sqlite.notices` keeps them: the
process that took a click is seldom the one that later has something to tell its clicker."""

from __future__ import annotations

from bot.jobs import Notice
from bot.store.postgres.connect import Pool


class PostgresNotices:
    """The `notices` table: one interaction per job, the latest."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def keep(self, notice: Notice) -> None:
        await self._pool.execute(
            "INSERT INTO notices (job_id, token, admin, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) "
            "DO UPDATE SET token = EXCLUDED.token, admin = EXCLUDED.admin, expires_at = EXCLUDED.expires_at",
            notice.job_id, notice.token, notice.admin, notice.expires_at)

    async def forget_expired(self, now: float) -> int:
        """Forget the interactions Discord no longer takes follow-ups for (the relay's hourly housekeeping)."""
        status = await self._pool.execute("DELETE FROM notices WHERE expires_at < $1", now)
        return int(status.split()[-1])

    async def get(self, job_id: int, now: float) -> Notice | None:
        """The job's interaction while Discord still takes follow-ups for it; None after."""
        row = await self._pool.fetchrow(
            "SELECT job_id, token, admin, expires_at FROM notices WHERE job_id = $1 AND expires_at > $2", job_id, now)
        return Notice(int(row[0]), str(row[1]), bool(row[2]), float(row[3])) if row else None
