"""A member's server-level permissions, computed the way Discord does from the server's roles."""

from __future__ import annotations

from typing import Any

import discord

from bot.discord_check import NEEDED, server_permissions

GUILD, BOT, OWNER = 10, 20, 30
VIEW, SEND, ATTACH, ADMIN = 1 << 10, 1 << 11, 1 << 15, 1 << 3


def guild(everyone: int, **roles: int) -> dict[str, Any]:
    listed = [{"id": str(GUILD), "permissions": str(everyone)}]
    listed += [{"id": name.removeprefix("r"), "permissions": str(bits)} for name, bits in roles.items()]
    return {"id": str(GUILD), "owner_id": str(OWNER), "roles": listed}


def test_everyone_and_the_members_roles_add_up() -> None:
    found = server_permissions(guild(VIEW, r1=SEND, r2=ATTACH), {"roles": ["1", "2"]}, BOT)
    assert (found.view_channel, found.send_messages, found.attach_files, found.embed_links) == (True, True, True,
                                                                                                False)


def test_a_role_the_member_does_not_have_counts_for_nothing() -> None:
    assert not server_permissions(guild(VIEW, r1=SEND), {"roles": []}, BOT).send_messages


def test_administrator_and_the_owner_have_everything() -> None:
    for permissions in (server_permissions(guild(0, r1=ADMIN), {"roles": ["1"]}, BOT),
                        server_permissions(guild(0), {"roles": []}, OWNER)):
        assert all(getattr(permissions, flag) for flag, _ in NEEDED)


def test_the_needed_permissions_are_discord_flags() -> None:
    assert [label for _, label in NEEDED] == ["View Channel", "Send Messages", "Attach Files", "Embed Links",
                                              "Read Message History", "Add Reactions"]
    assert all(flag in discord.Permissions.VALID_FLAGS for flag, _ in NEEDED)
