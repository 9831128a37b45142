"""Team settings in PostgreSQL: each server's choices, an admin's limits for one member, each member's Remix."""

from __future__ import annotations

from typing import Any

from bot.jobs import GuildSettings, MemberLimits
from bot.store.postgres.connect import Pool
from bot.store.sqlite.teams import GUILD_COLUMNS, MEMBER_COLUMNS


def _columns(fields: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a settings column: {', '.join(sorted(unknown))}")
    return list(fields)


def _upsert(table: str, keys: dict[str, int], fields: dict[str, Any], allowed: frozenset[str]) -> tuple[str, list[Any]]:
    """One statement that creates the row as needed and sets `fields` on it (atomic beside other processes)."""
    names = [*keys, *_columns(fields, allowed)]
    marks = ", ".join(f"${number}" for number in range(1, len(names) + 1))
    action = (f"DO UPDATE SET {', '.join(f'{name} = EXCLUDED.{name}' for name in fields)}" if fields
              else "DO NOTHING")
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) ON CONFLICT ({', '.join(keys)}) {action}"  # noqa: S608
    return sql, [*keys.values(), *fields.values()]


class PostgresTeams:
    """`guild_settings`, `member_limits` and `user_settings`."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        row = await self._pool.fetchrow("SELECT * FROM guild_settings WHERE guild_id = $1", guild_id)
        return GuildSettings(**dict(row)) if row else GuildSettings(guild_id=guild_id)

    async def update_guild_settings(self, guild_id: int, **fields: Any) -> GuildSettings:
        """Set some columns of a server's settings (None clears one), creating the row as needed."""
        sql, values = _upsert("guild_settings", {"guild_id": guild_id}, fields, GUILD_COLUMNS)
        await self._pool.execute(sql, *values)
        return await self.guild_settings(guild_id)

    async def member_limits(self, guild_id: int, user_id: int) -> MemberLimits:
        row = await self._pool.fetchrow("SELECT * FROM member_limits WHERE guild_id = $1 AND user_id = $2",
                                        guild_id, user_id)
        return MemberLimits(**dict(row)) if row else MemberLimits(guild_id=guild_id, user_id=user_id)

    async def update_member_limits(self, guild_id: int, user_id: int, **fields: Any) -> MemberLimits:
        sql, values = _upsert("member_limits", {"guild_id": guild_id, "user_id": user_id}, fields, MEMBER_COLUMNS)
        await self._pool.execute(sql, *values)
        return await self.member_limits(guild_id, user_id)

    async def remix_enabled(self, user_id: int) -> bool:
        return bool(await self._pool.fetchval("SELECT remix FROM user_settings WHERE user_id = $1", user_id))

    async def set_remix(self, user_id: int, enabled: bool) -> None:
        await self._pool.execute(
            "INSERT INTO user_settings (user_id, remix) VALUES ($1, $2) "
            "ON CONFLICT (user_id) DO UPDATE SET remix = EXCLUDED.remix", user_id, enabled)
