"""An SQLite database copied into PostgreSQL keeps every row and the identity old buttons carry; a live SQLite
database is backed up whole, as of one moment."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from bot.jobs import ALL_STATES, COMPLETED, QUEUED, RUNNING, Button, ErrorKind, JobRecord, OneUseLink, Pause
from bot.store import OneShotTaken, PostgresStore, SqliteStore, Store, StoreError
from bot.store.copy import TargetNotEmpty, backup_sqlite, copy_store
from bot.store.sqlite.migrations import SCHEMA_VERSION
from tests.store.helpers import ALICE, BOB, GUILD, completed, failed, new_job, running

SCOPE = "guild:1100000000000000100"


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(str(tmp_path / "relay.db"))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def postgres(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url)
    try:
        yield store
    finally:
        await store.close()


def wal_size(db: str) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def fill(store: Store) -> None:
    """A little of everything the relay writes."""
    grid = await completed(store)
    await store.images.keep(grid.id, [("image/png", b"\x89PNG\r\n\x1a\n\x00\xff" * 100), ("image/webp", b"RIFF\x00")])
    await store.links.create(OneUseLink("k" * 43, grid.id, ALICE, 1_800_000_000.0, 1_800_000_900.0))
    await store.teams.update_guild_settings(GUILD + 7, speed="turbo")
    await new_job(store, parent_id=grid.id, button=Button("U1", "MJ::JOB::upsample::1::abc"), one_shot=True)
    await running(store, owner=BOB, prompt="日本語のプロンプト 🦊")
    await failed(store, ErrorKind.UNTRACKABLE)
    await failed(store, ErrorKind.BAD_REQUEST, sent=False)
    queued = await new_job(store, owner=BOB)
    await store.jobs.mark_submitting(queued.id)
    await store.jobs.requeue(queued.id, 1_800_000_000.5, error="busy")
    await store.jobs.import_completed(guild_id=GUILD, channel_id=1, owner_id=ALICE, backend="useapi",
                                      backend_job_id="outside", prompt="p", buttons=(Button("🔄", "🔄"),), media=(),
                                      done_buttons=(), job_json={"ü": [1, 2.5, None]}, created_at=1_700_000_000.25)
    await store.teams.update_guild_settings(GUILD, policy="role", policy_role_id=GUILD + 1, daily_quota=5)
    await store.teams.update_member_limits(GUILD, ALICE, queue_limit=2)
    await store.teams.set_remix(ALICE, True)
    await store.teams.set_remix(BOB, False)
    await store.state.webhook_secret("the-callback-secret")
    await store.state.set_pause(Pause("needs a human", "acct-1"))
    await store.state.set_account_remix(True)
    await store.state.set_command_hash(SCOPE, "f" * 64)


async def everything(store: Store) -> tuple[object, ...]:
    jobs = await store.jobs.in_states(ALL_STATES)
    return (jobs, await store.teams.guild_settings(GUILD), await store.teams.member_limits(GUILD, ALICE),
            await store.teams.remix_enabled(ALICE), await store.teams.remix_enabled(BOB),
            await store.state.webhook_secret("unused"), await store.state.pause(), await store.state.account_remix(),
            await store.state.command_hash(SCOPE), await store.jobs.last_served(), await store.images.of_job(1),
            await store.links.get("k" * 43), await store.teams.guild_settings(GUILD + 7))


async def test_a_copy_keeps_every_row_and_the_identity(sqlite: SqliteStore, postgres: PostgresStore,
                                                        pg_url: str) -> None:
    await fill(sqlite)
    report = await copy_store(sqlite, postgres)
    assert report.identity == sqlite.identity == postgres.identity
    assert report.rows == {"jobs": 7, "job_images": 2, "editor_links": 1, "guild_settings": 2, "member_limits": 1,
                           "user_settings": 2, "command_hashes": 1, "relay_state": 1}
    assert report.next_job_id == 8 and not report.replaced
    assert str(report).startswith(f"copied 7 jobs, 2 kept images, 1 editor links, 2 servers' settings, 1 members' "
                                  f"limits, 2 members' Remix choices, 1 command hashes from {sqlite.path} to "
                                  f"{postgres.description}")
    await postgres.close()
    reopened = await PostgresStore.open(pg_url)
    try:
        assert reopened.identity == sqlite.identity
        assert await everything(reopened) == await everything(sqlite)
        jobs: list[JobRecord] = await reopened.jobs.in_states(ALL_STATES)
        assert all(job.ref == f"{sqlite.identity}-{job.id}" for job in jobs), "old buttons' references hold"
        assert await reopened.summary() == (SCHEMA_VERSION, 7)
        # The copied one-shot job still holds its button; new jobs take new numbers.
        with pytest.raises(OneShotTaken):
            await new_job(reopened, parent_id=1, button=Button("U1", "x"), one_shot=True)
        assert (await new_job(reopened)).id >= 8
    finally:
        await reopened.close()


async def test_the_copied_store_goes_on_with_the_copied_identity(sqlite: SqliteStore, postgres: PostgresStore) -> None:
    await new_job(sqlite)
    await copy_store(sqlite, postgres)
    fresh = await new_job(postgres)
    assert fresh.ref == f"{sqlite.identity}-{fresh.id}"
    assert await postgres.state.identity() == sqlite.identity


async def test_ids_go_on_past_deleted_jobs(sqlite: SqliteStore, postgres: PostgresStore) -> None:
    for _ in range(5):
        await new_job(sqlite)
    with closing(sqlite3.connect(sqlite.path)) as db:
        db.execute("DELETE FROM jobs WHERE id > 3")
        db.commit()
    report = await copy_store(sqlite, postgres)
    assert (report.rows["jobs"], report.next_job_id) == (3, 6)
    assert (await new_job(postgres)).id == 6, "job #4 and #5 had buttons once: their numbers are not given again"


async def test_an_empty_database_copies_too(sqlite: SqliteStore, postgres: PostgresStore) -> None:
    report = await copy_store(sqlite, postgres)
    assert report.rows["jobs"] == 0 and report.next_job_id == 1
    assert (await new_job(postgres)).id == 1
    assert postgres.identity == sqlite.identity


async def test_a_target_with_data_is_refused_unless_forced(sqlite: SqliteStore, postgres: PostgresStore) -> None:
    await fill(sqlite)
    mine = await running(postgres, prompt="already here")
    await postgres.state.webhook_secret("its-own-secret")
    own_identity = postgres.identity
    with pytest.raises(TargetNotEmpty, match=r"is not empty \(it holds 1 jobs, a webhook secret\).*force"):
        await copy_store(sqlite, postgres)
    assert await postgres.jobs.in_states(ALL_STATES) == [mine], "nothing was changed"
    assert postgres.identity == own_identity == await postgres.state.identity()
    report = await copy_store(sqlite, postgres, force=True)
    assert report.replaced
    assert await everything(postgres) == await everything(sqlite)


async def test_only_sqlite_into_postgresql(sqlite: SqliteStore, postgres: PostgresStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="from SQLite into PostgreSQL, not from postgresql into sqlite"):
        await copy_store(postgres, sqlite)
    memory = await SqliteStore.open(":memory:")
    try:
        with pytest.raises(StoreError, match="in-memory"):
            await copy_store(memory, postgres)
    finally:
        await memory.close()


async def test_a_row_postgresql_refuses_rolls_the_whole_copy_back(sqlite: SqliteStore,
                                                                   postgres: PostgresStore) -> None:
    await new_job(sqlite)
    await new_job(sqlite, prompt="a NUL \x00 in the prompt")  # SQLite keeps it; PostgreSQL's text cannot
    with pytest.raises(StoreError, match=r"copying .* failed"):
        await copy_store(sqlite, postgres)
    assert await postgres.jobs.count_all() == 0
    assert postgres.identity != sqlite.identity


async def test_a_backup_of_a_live_database_holds_its_rows(sqlite: SqliteStore, tmp_path: Path) -> None:
    await fill(sqlite)
    before = await sqlite.jobs.count_all()
    stop = asyncio.Event()

    async def keep_writing() -> None:
        while not stop.is_set():
            job = await new_job(sqlite, prompt="written during the backup")
            await sqlite.jobs.mark_submitting(job.id)
            await asyncio.sleep(0)

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.05)
    await backup_sqlite(sqlite.path, str(tmp_path / "backups" / "relay-backup.db"))
    stop.set()
    await writer
    after = await sqlite.jobs.count_all()
    assert not list((tmp_path / "backups").glob(".*partial*")), "no partial file is left"
    copy = await SqliteStore.open(str(tmp_path / "backups" / "relay-backup.db"))
    try:
        assert copy.identity == sqlite.identity
        version, held = await copy.summary()
        assert version == SCHEMA_VERSION and before < held <= after
        for job in await copy.jobs.in_states(ALL_STATES):
            assert job == await sqlite.jobs.get(job.id) or job.status == QUEUED, "each row whole, as committed"
        assert await copy.state.pause() == Pause("needs a human", "acct-1")
    finally:
        await copy.close()


async def test_a_backup_takes_the_commits_still_in_the_wal(sqlite: SqliteStore, tmp_path: Path) -> None:
    # While the bot runs its newest commits are in relay.db-wal: a plain copy of relay.db would miss them.
    for _ in range(3):
        await completed(sqlite)
    assert wal_size(sqlite.path) > 0
    await backup_sqlite(sqlite.path, str(tmp_path / "b.db"))
    assert wal_size(str(tmp_path / "b.db")) == 0, "a single file"
    with closing(sqlite3.connect(tmp_path / "b.db")) as db:
        assert db.execute("SELECT COUNT(*), MIN(status), MAX(status) FROM jobs").fetchone() == (3, COMPLETED,
                                                                                               COMPLETED)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)


async def test_a_backup_refuses_what_it_cannot_do_safely(sqlite: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such database file"):
        await backup_sqlite(str(tmp_path / "missing.db"), str(tmp_path / "out.db"))
    assert not (tmp_path / "missing.db").exists(), "nothing made where nothing was"
    with pytest.raises(StoreError, match="is the database itself"):
        await backup_sqlite(sqlite.path, sqlite.path)
    other = await SqliteStore.open(str(tmp_path / "in-use.db"))
    try:
        with pytest.raises(StoreError, match=r"in-use\.db-wal exists"):
            await backup_sqlite(sqlite.path, str(tmp_path / "in-use.db"))
    finally:
        await other.close()
    (tmp_path / "backups").mkdir()
    with pytest.raises(StoreError, match=r"backups is a folder: give the backup's file name \(e\.g\. .*relay\.db\)"):
        await backup_sqlite(sqlite.path, str(tmp_path / "backups"))
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(StoreError, match=r"a-file is a file, not a folder"):
        await backup_sqlite(sqlite.path, str(tmp_path / "a-file" / "b.db"))
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(StoreError, match="failed"):
        await backup_sqlite(str(tmp_path / "junk.db"), str(tmp_path / "out.db"))
    assert not (tmp_path / "out.db").exists()


async def test_a_backup_replaces_an_older_backup(sqlite: SqliteStore, tmp_path: Path) -> None:
    await new_job(sqlite)
    await backup_sqlite(sqlite.path, str(tmp_path / "b.db"))
    await running(sqlite)
    await backup_sqlite(sqlite.path, str(tmp_path / "b.db"))
    with closing(sqlite3.connect(tmp_path / "b.db")) as db:
        assert db.execute("SELECT status FROM jobs ORDER BY id").fetchall() == [(QUEUED,), (RUNNING,)]


async def test_a_backup_is_readable_by_its_owner_only(sqlite: SqliteStore, tmp_path: Path) -> None:
    # It holds the callback secret, as the database does; the usual umask would make it 0644.
    await sqlite.state.webhook_secret("the-callback-secret")
    saved = os.umask(0o022)
    try:
        await backup_sqlite(sqlite.path, str(tmp_path / "b.db"))
        (tmp_path / "old.db").write_bytes(b"")
        (tmp_path / "old.db").chmod(0o644)
        await backup_sqlite(sqlite.path, str(tmp_path / "old.db"))  # replacing a looser file
    finally:
        os.umask(saved)
    assert stat.S_IMODE((tmp_path / "b.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "old.db").stat().st_mode) == 0o600
