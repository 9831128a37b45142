"""The relay's own state in SQLite, one typed accessor per owner: the database identity, the callback secret,
the pause after a human-needed error, the reduced concurrency and the outage backoff, admin alerts already
sent, the account's Remix mode as Midjourney last reported it, and the hash of the slash commands last synced."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite

from bot.jobs import OutageState, Pause, SharedState
from bot.store.accessors import StateFields
from bot.store.sqlite.fetch import fetch_one


class SqliteState(StateFields):
    """The single `relay_state` row and `command_hashes`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def _get(self, column: str) -> Any:
        row = await fetch_one(self._db, f"SELECT {column} FROM relay_state WHERE id = 1")  # noqa: S608
        return row[0] if row else None

    async def _set(self, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self._db.execute(f"UPDATE relay_state SET {assignments} WHERE id = 1",  # noqa: S608 - our columns
                               tuple(fields.values()))

    async def webhook_secret(self, new: str) -> str:
        """The callback secret kept since the first start; `new` becomes it when there is none yet."""
        await self._db.execute("UPDATE relay_state SET webhook_secret = ? WHERE id = 1 AND webhook_secret IS NULL",
                               (new,))
        return str(await self._get("webhook_secret"))

    async def pause(self) -> Pause | None:
        row = await fetch_one(self._db, "SELECT paused_reason, paused_account FROM relay_state WHERE id = 1")
        if row is None or not row[0]:
            return None
        return Pause(reason=str(row[0]), channel=row[1])

    async def shared(self) -> SharedState:
        """The pause, the reduced concurrency and the outage, in one read."""
        row = await fetch_one(
            self._db, "SELECT paused_reason, paused_account, reduced_until, outage_since, outage_round, "
            "outage_retry_at FROM relay_state WHERE id = 1")
        assert row is not None, "relay_state is made by migration 3"
        pause = Pause(reason=str(row[0]), channel=row[1]) if row[0] else None
        return SharedState(pause, float(row[2]), OutageState(row[3], int(row[4]), float(row[5])))

    async def reduce_concurrency(self, until: float) -> None:
        """Use fewer slots until `until` (a later moment wins over an earlier one)."""
        await self._db.execute("UPDATE relay_state SET reduced_until = MAX(reduced_until, ?) WHERE id = 1", (until,))

    async def set_outage(self, new: OutageState, expect: OutageState) -> bool:
        """Move the outage from `expect` to `new`; False when it was not `expect` any more (another took it on)."""
        async with self._db.execute(
                "UPDATE relay_state SET outage_since = ?, outage_round = ?, outage_retry_at = ? WHERE id = 1 "
                "AND outage_since IS ? AND outage_round = ? AND outage_retry_at = ?",
                (new.since, new.round, new.retry_at, expect.since, expect.round, expect.retry_at)) as cur:
            return cur.rowcount == 1

    async def alert_once(self, kind: str, guild_id: int | None, now: float) -> bool:
        """Note that admins (of `guild_id`, None: nowhere in particular) hear of `kind`; False when they already
        did in this episode."""
        async with self._db.execute("INSERT OR IGNORE INTO alert_episodes (kind, guild_id, sent_at) VALUES (?, ?, ?)",
                                    (kind, guild_id or 0, now)) as cur:
            return cur.rowcount == 1

    async def alerts_over(self, kinds: Iterable[str]) -> None:
        """The episodes of `kinds` are over: the next such problem is told again."""
        wanted = tuple(kinds)
        await self._db.execute(f"DELETE FROM alert_episodes WHERE kind IN ({','.join('?' * len(wanted))})",  # noqa: S608
                               wanted)

    async def command_hash(self, scope: str) -> str | None:
        row = await fetch_one(self._db, "SELECT digest FROM command_hashes WHERE scope = ?", (scope,))
        return str(row[0]) if row else None

    async def set_command_hash(self, scope: str, digest: str) -> None:
        await self._db.execute(
            "INSERT INTO command_hashes (scope, digest) VALUES (?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET digest = excluded.digest", (scope, digest))

    async def forget_command_hashes(self) -> None:
        """Forget what was last synced, so the next sync happens whatever the commands are."""
        await self._db.execute("DELETE FROM command_hashes")
