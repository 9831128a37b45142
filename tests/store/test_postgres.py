"""What only the PostgreSQL store has: DATABASE_URL, failing to connect in one clear line, migrations taken
once under an advisory lock by processes starting together, and a schema the same as SQLite's."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from bot.store import PostgresStore, SqliteStore, StoreError, open_store
from bot.store.postgres.migrations import LEGACY_1, MIGRATION_LOCK, MIGRATIONS, migrate
from bot.store.sqlite.migrations import SCHEMA_VERSION
from tests.pgserver import PgServer
from tests.ports import free_port

# Every table both dialects have (PostgreSQL's edit_turns is its own: one SQLite process keeps that in memory).
TABLES = ("jobs", "guild_settings", "member_limits", "user_settings", "relay_state", "command_hashes", "job_images",
          "editor_links", "alert_episodes", "notices")


async def test_database_url_chooses_postgresql(pg_url: str, tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "unused.db"), pg_url)
    try:
        assert store.kind == "postgresql" and await store.summary() == (SCHEMA_VERSION, 0)
    finally:
        await store.close()
    assert not (tmp_path / "unused.db").exists()
    sqlite = await open_store(str(tmp_path / "relay.db"), None)
    await sqlite.close()
    assert sqlite.kind == "sqlite"


async def test_herokus_postgres_scheme_is_taken(pg_url: str) -> None:
    store = await open_store("unused.db", pg_url.replace("postgresql://", "postgres://", 1))
    try:
        assert store.kind == "postgresql" and store.description.startswith("postgres://")
    finally:
        await store.close()


async def test_a_url_of_another_kind_is_refused() -> None:
    with pytest.raises(StoreError, match=r"DATABASE_URL mysql://u:\*\*\*@h/d is not a PostgreSQL URL"):
        await open_store("unused.db", "mysql://u:pw@h/d")


async def test_a_server_that_is_not_there(pg_server: PgServer) -> None:
    url = pg_server.url("relay", password="hunter2", port=free_port())
    with pytest.raises(StoreError) as failed:
        await PostgresStore.open(url)
    message = str(failed.value)
    assert message.startswith(f"PostgreSQL database postgresql://postgres:***@127.0.0.1:{url.split(':')[3]}")
    assert "cannot be reached: connection refused" in message
    assert "hunter2" not in message and "\n" not in message


async def test_a_wrong_password(pg_server: PgServer) -> None:
    user, password = pg_server.password_user()
    url = pg_server.url("postgres", user=user, password=password + "-wrong")
    with pytest.raises(StoreError) as failed:
        await PostgresStore.open(url)
    message = str(failed.value)
    assert f"postgresql://{user}:***@127.0.0.1" in message and "the password was refused" in message
    assert password not in message and quote(password, safe="") not in message and "\n" not in message


async def test_a_database_that_does_not_exist(pg_server: PgServer) -> None:
    with pytest.raises(StoreError, match=r"/no_such_db: no such database \(database \"no_such_db\" does not exist\)"):
        await PostgresStore.open(pg_server.url("no_such_db"))


async def test_a_role_that_may_not_make_the_schema(pg_server: PgServer, pg_url: str) -> None:
    # Since PostgreSQL 15 only the database's owner may create tables in `public` by default.
    user, password = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    with pytest.raises(StoreError) as failed:
        await PostgresStore.open(pg_server.url(database, user=user, password=password))
    assert str(failed.value) == (f"PostgreSQL database postgresql://{user}:***@127.0.0.1:{pg_server.port}/{database}: "
                                 "the server said: permission denied for schema public")


async def test_the_password_is_never_logged(pg_server: PgServer, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    user, password = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    pg_server.fetch(pg_url, f"ALTER DATABASE {database} OWNER TO {user}")
    url = pg_server.url(database, user=user, password=password)
    caplog.set_level(logging.DEBUG)
    store = await PostgresStore.open(url)
    try:
        assert store.description == f"postgresql://{user}:***@127.0.0.1:{pg_server.port}/{database}"
        assert await store.summary() == (SCHEMA_VERSION, 0)
    finally:
        await store.close()
    assert f"database migrated to version {SCHEMA_VERSION}" in caplog.text
    assert password not in caplog.text


async def test_each_migration_is_recorded_once(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    await store.close()
    again = await PostgresStore.open(pg_url)
    await again.close()
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [row["version"] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(isinstance(row["applied_at"], float) for row in rows)
    assert again.identity == store.identity


async def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_url) for _ in range(4)))
    try:
        assert len({store.identity for store in stores}) == 1
        conn = await asyncpg.connect(pg_url)
        try:
            assert await conn.fetchval("SELECT COUNT(*) FROM schema_migrations") == SCHEMA_VERSION
            assert await conn.fetchval("SELECT COUNT(*) FROM relay_state") == 1
        finally:
            await conn.close()
    finally:
        for store in stores:
            await store.close()


async def test_a_migration_waits_for_the_advisory_lock(pg_url: str) -> None:
    holder = await asyncpg.connect(pg_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        opening = asyncio.create_task(PostgresStore.open(pg_url))
        await asyncio.sleep(0.5)
        assert not opening.done(), "it waits for whoever holds the lock"
        assert await holder.fetchval("SELECT to_regclass('jobs')") is None
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        store = await asyncio.wait_for(opening, 10)
        await store.close()
    finally:
        await holder.close()


async def test_a_failing_migration_leaves_nothing_of_itself(pg_url: str) -> None:
    broken = (LEGACY_1, "CREATE TABLE half_done (a INTEGER); INSERT INTO half_done VALUES (1); SELECT 1 / 0")
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(conn, broken)
        assert await conn.fetchval("SELECT MAX(version) FROM schema_migrations") == 1
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT to_regclass('jobs')") is not None
        assert await migrate(conn, MIGRATIONS) == SCHEMA_VERSION, "the real ones carry on from there"
    finally:
        await conn.close()


async def test_a_database_newer_than_this_relay_is_left_alone(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await migrate(conn)
        await conn.execute("INSERT INTO schema_migrations VALUES ($1, 0)", SCHEMA_VERSION + 1)
        assert await migrate(conn) == SCHEMA_VERSION + 1
    finally:
        await conn.close()
    assert f"newer than this relay's {SCHEMA_VERSION}" in caplog.text


def _sqlite_schema(path: Path) -> tuple[dict[str, set[str]], set[str]]:
    with closing(sqlite3.connect(path)) as db:
        columns = {t: {row[1] for row in db.execute(f"PRAGMA table_info({t})")} for t in TABLES}
        indexes = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'")}
    return columns, indexes


async def test_the_schema_is_sqlites(pg_url: str, tmp_path: Path) -> None:
    sqlite = await SqliteStore.open(str(tmp_path / "relay.db"))
    await sqlite.close()
    columns, indexes = _sqlite_schema(tmp_path / "relay.db")
    await (await PostgresStore.open(pg_url)).close()  # opened for its migrations
    conn = await asyncpg.connect(pg_url)
    try:
        found = await conn.fetch("SELECT table_name, column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'public'")
        pg_columns = {t: {r["column_name"] for r in found if r["table_name"] == t} for t in TABLES}
        assert pg_columns == columns
        ids = {(r["table_name"], r["column_name"]): r["data_type"] for r in found if r["column_name"].endswith("_id")}
        assert {kind for (table, name), kind in ids.items() if name not in {"database_id", "backend_job_id"}} == {
            "bigint"}, "every Discord id and job id is a BIGINT"
        defs = {r["indexname"]: r["indexdef"] for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1::text[])",
            list(TABLES))}
        assert {name for name in defs if not name.endswith(("_pkey", "_key"))} == indexes
        assert "jobs_backend_backend_job_id_key" in defs
        one_shot = defs["jobs_one_shot"]
        assert one_shot.startswith("CREATE UNIQUE INDEX") and "WHERE (one_shot AND" in one_shot
    finally:
        await conn.close()
