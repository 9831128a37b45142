"""Team settings in SQLite: each server's choices, an admin's limits for one member, each member's Remix."""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.jobs import GuildSettings, MemberLimits
from bot.store.sqlite.fetch import fetch_one

GUILD_COLUMNS = frozenset({"policy", "policy_role_id", "gallery_channel_id", "admin_channel_id", "daily_quota",
                           "queue_limit", "speed"})
MEMBER_COLUMNS = frozenset({"daily_quota", "queue_limit"})


def _assignments(fields: dict[str, Any], allowed: frozenset[str]) -> str:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a settings column: {', '.join(sorted(unknown))}")
    return ", ".join(f"{name} = ?" for name in fields)


class SqliteTeams:
    """`guild_settings`, `member_limits` and `user_settings`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        row = await fetch_one(self._db, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return GuildSettings(**dict(row)) if row else GuildSettings(guild_id=guild_id)

    async def update_guild_settings(self, guild_id: int, **fields: Any) -> GuildSettings:
        """Set some columns of a server's settings (None clears one), creating the row as needed."""
        await self._db.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
        if fields:
            await self._db.execute(
                f"UPDATE guild_settings SET {_assignments(fields, GUILD_COLUMNS)} WHERE guild_id = ?",  # noqa: S608
                (*fields.values(), guild_id),
            )
        return await self.guild_settings(guild_id)

    async def member_limits(self, guild_id: int, user_id: int) -> MemberLimits:
        row = await fetch_one(self._db, "SELECT * FROM member_limits WHERE guild_id = ? AND user_id = ?",
                              (guild_id, user_id))
        return MemberLimits(**dict(row)) if row else MemberLimits(guild_id=guild_id, user_id=user_id)

    async def update_member_limits(self, guild_id: int, user_id: int, **fields: Any) -> MemberLimits:
        await self._db.execute(
            "INSERT OR IGNORE INTO member_limits (guild_id, user_id) VALUES (?, ?)", (guild_id, user_id)
        )
        if fields:
            await self._db.execute(
                f"UPDATE member_limits SET {_assignments(fields, MEMBER_COLUMNS)} "  # noqa: S608
                "WHERE guild_id = ? AND user_id = ?",
                (*fields.values(), guild_id, user_id),
            )
        return await self.member_limits(guild_id, user_id)

    async def remix_enabled(self, user_id: int) -> bool:
        row = await fetch_one(self._db, "SELECT remix FROM user_settings WHERE user_id = ?", (user_id,))
        return bool(row[0]) if row else False

    async def set_remix(self, user_id: int, enabled: bool) -> None:
        await self._db.execute(
            "INSERT INTO user_settings (user_id, remix) VALUES (?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET remix = excluded.remix",
            (user_id, int(enabled)),
        )
