"""A team's settings, limits and Remix choices, and the relay's own state, kept across restarts."""

from __future__ import annotations

import re

import pytest

from bot.jobs import GuildSettings, MemberLimits, Pause
from bot.store import Store
from bot.store.sqlite.migrations import SCHEMA_VERSION
from tests.store.conftest import Rig
from tests.store.helpers import ALICE, BOB, GUILD, new_job

ROLE = 1_100_000_000_000_000_401
GALLERY = 1_100_000_000_000_000_201


async def test_a_server_without_settings_has_the_defaults(store: Store) -> None:
    assert await store.teams.guild_settings(GUILD) == GuildSettings(guild_id=GUILD)
    assert await store.teams.update_guild_settings(GUILD) == GuildSettings(guild_id=GUILD)


async def test_server_settings_are_set_cleared_and_kept(store: Store, rig: Rig) -> None:
    changed = await store.teams.update_guild_settings(GUILD, policy="role", policy_role_id=ROLE,
                                                      gallery_channel_id=GALLERY, daily_quota=50)
    assert changed == GuildSettings(GUILD, "role", ROLE, GALLERY, None, 50, None)
    partly = await store.teams.update_guild_settings(GUILD, gallery_channel_id=None, queue_limit=8)
    assert partly == GuildSettings(GUILD, "role", ROLE, None, None, 50, 8)
    assert await store.teams.guild_settings(GUILD + 1) == GuildSettings(guild_id=GUILD + 1)
    reopened = await rig.reopen(store)
    assert await reopened.teams.guild_settings(GUILD) == partly


async def test_an_unknown_settings_column_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="not a settings column: owner_id"):
        await store.teams.update_guild_settings(GUILD, owner_id=5)
    with pytest.raises(ValueError, match="not a settings column: policy"):
        await store.teams.update_member_limits(GUILD, ALICE, policy="everyone")


async def test_member_limits_are_per_member_and_server(store: Store, rig: Rig) -> None:
    assert await store.teams.member_limits(GUILD, ALICE) == MemberLimits(GUILD, ALICE)
    set_ = await store.teams.update_member_limits(GUILD, ALICE, daily_quota=20, queue_limit=4)
    assert set_ == MemberLimits(GUILD, ALICE, 20, 4)
    assert await store.teams.update_member_limits(GUILD, ALICE, queue_limit=None) == MemberLimits(GUILD, ALICE, 20)
    assert await store.teams.member_limits(GUILD, BOB) == MemberLimits(GUILD, BOB)
    assert await store.teams.member_limits(GUILD + 1, ALICE) == MemberLimits(GUILD + 1, ALICE)
    reopened = await rig.reopen(store)
    assert await reopened.teams.member_limits(GUILD, ALICE) == MemberLimits(GUILD, ALICE, 20)


async def test_remix_is_each_members_choice(store: Store) -> None:
    assert await store.teams.remix_enabled(ALICE) is False
    await store.teams.set_remix(ALICE, True)
    assert await store.teams.remix_enabled(ALICE) is True
    assert await store.teams.remix_enabled(BOB) is False
    await store.teams.set_remix(ALICE, False)
    assert await store.teams.remix_enabled(ALICE) is False


async def test_the_identity_is_made_once_and_kept(store: Store, rig: Rig) -> None:
    assert re.fullmatch(r"[0-9a-f]{10}", store.identity)
    assert await store.state.identity() == store.identity
    job = await new_job(store)
    reopened = await rig.reopen(store)
    assert reopened.identity == store.identity
    again = await reopened.jobs.get(job.id)
    assert again is not None and again.ref == f"{store.identity}-{job.id}"


async def test_the_webhook_secret_is_set_once(store: Store, rig: Rig) -> None:
    assert await store.state.webhook_secret("first-secret") == "first-secret"
    assert await store.state.webhook_secret("second-secret") == "first-secret"
    reopened = await rig.reopen(store)
    assert await reopened.state.webhook_secret("third") == "first-secret"


async def test_the_pause_is_kept_until_lifted(store: Store, rig: Rig) -> None:
    assert await store.state.pause() is None
    await store.state.set_pause(Pause("Midjourney asks for a human", channel="1100000000000000001"))
    reopened = await rig.reopen(store)
    assert await reopened.state.pause() == Pause("Midjourney asks for a human", "1100000000000000001")
    await reopened.state.set_pause(Pause("again"))
    assert await reopened.state.pause() == Pause("again", None)
    await reopened.state.set_pause(None)
    assert await reopened.state.pause() is None


async def test_the_accounts_remix_mode_as_last_seen(store: Store) -> None:
    assert await store.state.account_remix() is None
    await store.state.set_account_remix(True)
    assert await store.state.account_remix() is True
    await store.state.set_account_remix(False)
    assert await store.state.account_remix() is False
    await store.state.set_account_remix(None)
    assert await store.state.account_remix() is None


async def test_command_hashes_per_scope(store: Store, rig: Rig) -> None:
    assert await store.state.command_hash("global") is None
    await store.state.set_command_hash("global", "a" * 64)
    await store.state.set_command_hash("guild:1100000000000000001", "b" * 64)
    await store.state.set_command_hash("global", "c" * 64)
    reopened = await rig.reopen(store)
    assert await reopened.state.command_hash("global") == "c" * 64
    assert await reopened.state.command_hash("guild:1100000000000000001") == "b" * 64


async def test_summary_is_the_schema_version_and_the_jobs(store: Store) -> None:
    assert await store.summary() == (SCHEMA_VERSION, 0)
    for _ in range(3):
        await new_job(store)
    assert await store.summary() == (SCHEMA_VERSION, 3)


async def test_the_store_says_what_and_where_it_is(store: Store, rig: Rig) -> None:
    assert store.kind == rig.kind
    assert store.description == rig.where  # the test server's URL has no password to mask
