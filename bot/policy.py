"""Who may do what: clicking under someone else's result, and admin-only commands.

There is no members intent: who a member is (their roles, their permissions) comes with each interaction,
so every check here is made at the moment of the action, never from a cached member list.
"""

from __future__ import annotations

import discord

from bot.jobs import GuildSettings, JobRecord

OWNER: str = "owner"
ROLE: str = "role"
EVERYONE: str = "everyone"
POLICIES = (OWNER, ROLE, EVERYONE)


def is_admin(member: discord.abc.User) -> bool:
    """An admin is a member with Manage Server in this server, checked at the moment of the action."""
    if not isinstance(member, discord.Member):
        return False
    if member.guild.unavailable:
        # The server is not in the cache (an outage, or a join not yet announced), so its roles' permissions
        # are unknown; the permissions Discord resolved for this interaction still are.
        resolved = member.resolved_permissions
        return resolved is not None and resolved.manage_guild
    # The member's roles come from the interaction, the roles' permissions from the server kept up to date
    # by the guilds intent: Manage Server is a server-wide permission, so channel overwrites do not count.
    return member.guild_permissions.manage_guild


def has_role(member: discord.abc.User, role_id: int) -> bool:
    return isinstance(member, discord.Member) and member.get_role(role_id) is not None


def describe(settings: GuildSettings) -> str:
    """The server's click policy in words, for `/relay policy` and `/relay status`."""
    if settings.policy == EVERYONE:
        return "everyone may use the buttons under any result"
    if settings.policy == ROLE and settings.policy_role_id is not None:
        return f"a result's owner and members with <@&{settings.policy_role_id}> may use its buttons"
    return "only a result's owner may use its buttons"


def click_refusal(member: discord.abc.User, job: JobRecord, settings: GuildSettings) -> str | None:
    """Why `member` may not use the buttons of `job` under the server's policy, or None if they may.

    Server managers always may; the owner always may; then the server's policy decides.
    """
    if member.id == job.owner_id or is_admin(member):
        return None
    if settings.policy == EVERYONE:
        return None
    if settings.policy == ROLE and settings.policy_role_id is not None:
        if has_role(member, settings.policy_role_id):
            return None
        return (f"Only <@{job.owner_id}>, members with the <@&{settings.policy_role_id}> role, or server "
                f"managers can use the buttons of job #{job.id}. Nothing was sent.")
    return f"Only <@{job.owner_id}> (or a server manager) can use the buttons of job #{job.id}. Nothing was sent."
