"""The first releases' databases climb to the backend seam: the committed 87c342d database through SQLite's
migration 3, and the same rows through PostgreSQL's, which must come out the same."""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.jobs import COMPLETED, QUEUED, RUNNING, Button, GuildSettings, MemberLimits
from bot.store import OneShotTaken, PostgresStore, SqliteStore, Store
from bot.store.postgres.migrations import MIGRATIONS, migrate
from bot.store.sqlite.migrations import SCHEMA_VERSION

UPGRADE = Path(__file__).resolve().parents[1] / "upgrade"
GUILD, ALICE = 1_100_000_000_000_000_100, 1_100_000_000_000_000_301
LEGACY_TABLES = ("jobs", "meta", "guild_settings", "member_limits", "user_settings")
LEGACY_FLAGS = frozenset({"published", "simulated", "remix"})


@pytest.fixture
async def upgraded(tmp_path: Path) -> Any:
    db = tmp_path / "relay.db"
    shutil.copyfile(UPGRADE / "relay-87c342d.db", db)
    store = await SqliteStore.open(str(db))
    try:
        yield store
    finally:
        await store.close()


def legacy_rows(table: str) -> list[dict[str, Any]]:
    """The committed database's rows as 87c342d wrote them (immutable: even a read-only look at a WAL database
    would leave -shm and -wal files beside it)."""
    uri = f"{(UPGRADE / 'relay-87c342d.db').as_uri()}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]


async def test_the_87c342d_database_migrates_to_the_current_version(upgraded: SqliteStore) -> None:
    store: Store = upgraded
    assert await store.summary() == (SCHEMA_VERSION, 5)
    assert re.fullmatch(r"[0-9a-f]{10}", store.identity)
    jobs = [await store.jobs.get(n) for n in range(1, 6)]
    assert [j.status if j else None for j in jobs] == [COMPLETED] * 3 + [RUNNING, QUEUED]
    assert all(j is not None and j.backend == "useapi" and j.ref == str(j.id) for j in jobs), "legacy references"
    grid, upscale, _, river, _ = jobs
    assert grid is not None and upscale is not None and river is not None
    assert grid.buttons[0] == Button("U1", "U1")
    assert grid.media and grid.media[0].content_type == "image/png"
    assert (upscale.parent_id, upscale.button, upscale.button_ref) == (1, "U1", "U1")
    assert upscale.gallery_message_id == 1_577_422_704_720_478_208
    assert grid.message_id == 1_577_422_703_340_552_192


async def test_an_upgraded_running_job_answers_to_its_old_reference(upgraded: SqliteStore) -> None:
    river = await upgraded.jobs.get(4)
    assert river is not None and river.backend_job_id is not None
    assert await upgraded.jobs.note_progress(4, river.backend_job_id, 50, None) is None
    noted = await upgraded.jobs.note_progress(4, river.backend_job_id, 50, "4")
    assert noted is not None and noted[1] == 50


async def test_the_upgraded_one_shot_button_is_still_taken(upgraded: SqliteStore) -> None:
    with pytest.raises(OneShotTaken) as taken:
        await upgraded.jobs.create(guild_id=GUILD, channel_id=1, owner_id=ALICE, prompt="p", backend="useapi",
                                   parent_id=1, button=Button("U1", "U1"), one_shot=True)
    assert taken.value.existing is not None and taken.value.existing.id == 2
    fresh = await upgraded.jobs.create(guild_id=GUILD, channel_id=1, owner_id=ALICE, prompt="p", backend="useapi")
    assert fresh.id == 6 and fresh.ref == f"{upgraded.identity}-6"


async def test_the_upgraded_settings_and_state(upgraded: SqliteStore) -> None:
    assert await upgraded.teams.guild_settings(GUILD) == GuildSettings(
        GUILD, "role", 1_100_000_000_000_000_401, 1_100_000_000_000_000_201, None, 50, 8)
    assert await upgraded.teams.member_limits(GUILD, ALICE) == MemberLimits(GUILD, ALICE, 20, 4)
    assert await upgraded.teams.remix_enabled(ALICE) is True
    assert await upgraded.state.webhook_secret("new") == "inXaKdPYvDPD0g4wRkb_OaDh898MoMprveE9GSSUfDQ"
    assert await upgraded.state.command_hash("global:1100000000000000001") == (
        "cb88395cccf3db49296e2d88aa0c97e41af3f204a724f09ffb5ee04ab8740ad8")
    assert await upgraded.state.pause() is None


async def _postgres_at_version_2_with_the_legacy_rows(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        assert await migrate(conn, MIGRATIONS[:2]) == 2
        for table in LEGACY_TABLES:
            for row in legacy_rows(table):
                values = [bool(v) if k in LEGACY_FLAGS else v for k, v in row.items()]
                marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
                await conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", *values)
        await conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT MAX(id) FROM jobs))")
    finally:
        await conn.close()


async def test_postgresqls_migration_3_rewrites_the_same_rows_the_same_way(upgraded: SqliteStore, pg_url: str) -> None:
    await _postgres_at_version_2_with_the_legacy_rows(pg_url)
    store = await PostgresStore.open(pg_url)
    try:
        assert await store.summary() == (SCHEMA_VERSION, 5)
        for number in range(1, 6):
            assert await store.jobs.get(number) == await upgraded.jobs.get(number)
        assert await store.teams.guild_settings(GUILD) == await upgraded.teams.guild_settings(GUILD)
        assert await store.teams.member_limits(GUILD, ALICE) == await upgraded.teams.member_limits(GUILD, ALICE)
        assert await store.teams.remix_enabled(ALICE) is True
        assert await store.state.webhook_secret("new") == await upgraded.state.webhook_secret("other")
        scope = "global:1100000000000000001"
        assert await store.state.command_hash(scope) == await upgraded.state.command_hash(scope)
        river = await store.jobs.get(4)
        assert river is not None and river.backend_job_id is not None
        assert await store.jobs.note_progress(4, river.backend_job_id, 50, "4") is not None
        with pytest.raises(OneShotTaken):
            await store.jobs.create(guild_id=GUILD, channel_id=1, owner_id=ALICE, prompt="p", backend="useapi",
                                    parent_id=1, button=Button("U1", "U1"), one_shot=True)
        # Past the old ids (a sequence never gives back the number the refused insert above drew).
        assert (await store.jobs.create(guild_id=GUILD, channel_id=1, owner_id=ALICE, prompt="p",
                                        backend="useapi")).id > 5
    finally:
        await store.close()
