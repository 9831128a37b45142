"""The relay's own state in PostgreSQL, as `bot.store.sqlite.state` keeps it: the database identity, the
callback secret, the pause after a human-needed error, the reduced concurrency and the outage backoff, admin
alerts already sent, the account's Remix mode as Midjourney last reported it, and the hash of the slash
commands last synced. Several processes read and write it: every change is one guarded statement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.jobs import OutageState, Pause, SharedState
from bot.store.accessors import StateFields
from bot.store.postgres.connect import Pool, changed


class PostgresState(StateFields):
    """The single `relay_state` row and `command_hashes`."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _get(self, column: str) -> Any:
        return await self._pool.fetchval(f"SELECT {column} FROM relay_state WHERE id = 1")  # noqa: S608 - ours

    async def _set(self, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ${number}" for number, name in enumerate(fields, start=1))
        await self._pool.execute(f"UPDATE relay_state SET {assignments} WHERE id = 1",  # noqa: S608 - our columns
                                 *fields.values())

    async def webhook_secret(self, new: str) -> str:
        """The callback secret kept since the first start; `new` becomes it when there is none yet.

        One statement, so that two processes starting at once agree on the first one's secret."""
        return str(await self._pool.fetchval(
            "UPDATE relay_state SET webhook_secret = COALESCE(webhook_secret, $1) WHERE id = 1 "
            "RETURNING webhook_secret", new))

    async def pause(self) -> Pause | None:
        row = await self._pool.fetchrow("SELECT paused_reason, paused_account FROM relay_state WHERE id = 1")
        if row is None or not row[0]:
            return None
        return Pause(reason=str(row[0]), channel=row[1])

    async def shared(self) -> SharedState:
        """The pause, the reduced concurrency and the outage, in one read."""
        row = await self._pool.fetchrow(
            "SELECT paused_reason, paused_account, reduced_until, outage_since, outage_round, outage_retry_at "
            "FROM relay_state WHERE id = 1")
        assert row is not None, "relay_state is made by migration 3"
        pause = Pause(reason=str(row[0]), channel=row[1]) if row[0] else None
        return SharedState(pause, float(row[2]), OutageState(row[3], int(row[4]), float(row[5])))

    async def reduce_concurrency(self, until: float) -> None:
        """Use fewer slots until `until` (a later moment wins over an earlier one)."""
        await self._pool.execute("UPDATE relay_state SET reduced_until = GREATEST(reduced_until, $1) WHERE id = 1",
                                 until)

    async def set_outage(self, new: OutageState, expect: OutageState) -> bool:
        """Move the outage from `expect` to `new`; False when it was not `expect` any more (another took it on)."""
        return changed(await self._pool.execute(
            "UPDATE relay_state SET outage_since = $1, outage_round = $2, outage_retry_at = $3 WHERE id = 1 "
            "AND outage_since IS NOT DISTINCT FROM $4::double precision AND outage_round = $5 "
            "AND outage_retry_at = $6", new.since, new.round, new.retry_at, expect.since, expect.round,
            expect.retry_at)) == 1

    async def alert_once(self, kind: str, guild_id: int | None, now: float) -> bool:
        """Note that admins (of `guild_id`, None: nowhere in particular) hear of `kind`; False when they already
        did in this episode (of two processes racing, one hears True)."""
        return changed(await self._pool.execute(
            "INSERT INTO alert_episodes (kind, guild_id, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            kind, guild_id or 0, now)) == 1

    async def alerts_over(self, kinds: Iterable[str]) -> None:
        """The episodes of `kinds` are over: the next such problem is told again."""
        await self._pool.execute("DELETE FROM alert_episodes WHERE kind = ANY($1::text[])", list(kinds))

    async def command_hash(self, scope: str) -> str | None:
        value = await self._pool.fetchval("SELECT digest FROM command_hashes WHERE scope = $1", scope)
        return str(value) if value is not None else None

    async def set_command_hash(self, scope: str, digest: str) -> None:
        await self._pool.execute(
            "INSERT INTO command_hashes (scope, digest) VALUES ($1, $2) "
            "ON CONFLICT (scope) DO UPDATE SET digest = EXCLUDED.digest", scope, digest)

    async def forget_command_hashes(self) -> None:
        """Forget what was last synced, so the next sync happens whatever the commands are."""
        await self._pool.execute("DELETE FROM command_hashes")
