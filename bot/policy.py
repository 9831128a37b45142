"""Who may do what: clicking under someone else's result, and admin-only commands."""

from __future__ import annotations

import discord

from bot.store import GuildSettings, JobRecord

POLICIES = ("owner", "role", "everyone")


def is_admin(member: discord.abc.User) -> bool:
    """An admin is a member with Manage Server in this server, checked at the moment of the action."""
    permissions = getattr(member, "guild_permissions", None)
    return bool(permissions is not None and permissions.manage_guild)


def click_refusal(member: discord.abc.User, job: JobRecord, settings: GuildSettings) -> str | None:
    """Why `member` may not use the buttons of `job` under the server's policy, or None if they may."""
    if member.id == job.owner_id or is_admin(member):
        return None
    if settings.policy == "everyone":
        return None
    if settings.policy == "role" and settings.policy_role_id is not None:
        roles = getattr(member, "roles", [])
        if any(role.id == settings.policy_role_id for role in roles):
            return None
        return (f"Only <@{job.owner_id}>, members with the <@&{settings.policy_role_id}> role, or server "
                f"managers can use the buttons of job #{job.id}.")
    return f"Only <@{job.owner_id}> (or a server manager) can use the buttons of job #{job.id}."
