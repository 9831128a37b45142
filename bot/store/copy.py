"""Moving the relay's memory: an SQLite database copied whole into PostgreSQL (`copy_store`), and a consistent
backup of a live SQLite database (`backup_sqlite`).

The copy keeps everything old buttons and callbacks depend on: every job with its id and reference, the
database identity they carry, the webhook secret in the backend's callback URLs, and the id sequence past
every id ever given, so that no new job takes the number of an old button.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite
import asyncpg

from bot.store.base import Store, StoreError
from bot.store.postgres import PostgresStore
from bot.store.postgres.connect import Connection
from bot.store.sqlite import SqliteStore
from bot.store.sqlite.files import make_folder, owner_only

# Every table of the schema (version 4) but the migrations' own bookkeeping; a table after the ones it points at.
TABLES: Final = ("jobs", "job_images", "editor_links", "guild_settings", "member_limits", "user_settings",
                 "command_hashes", "relay_state")
CONTENT: Final = {"jobs": "jobs", "job_images": "kept images", "editor_links": "editor links",
                  "guild_settings": "servers' settings", "member_limits": "members' limits",
                  "user_settings": "members' Remix choices", "command_hashes": "command hashes"}
BATCH: Final = 1000
COLUMNS_SQL: Final = """SELECT column_name, data_type, is_nullable = 'YES' AS nullable FROM information_schema.columns
                        WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"""


class TargetNotEmpty(StoreError):
    """The target database already holds jobs, settings or state (the message says which): a copy would replace
    them, so it is made only when forced."""


@dataclass(frozen=True)
class CopyReport:
    """What a copy moved: rows per table, the identity now in the target, where new job numbers start."""

    source: str
    target: str
    identity: str
    rows: dict[str, int]
    next_job_id: int
    replaced: bool  # the target held data, replaced because the copy was forced

    def __str__(self) -> str:
        counts = ", ".join(f"{self.rows[table]} {words}" for table, words in CONTENT.items())
        return (f"copied {counts} from {self.source} to {self.target}"
                f"{' (replacing what it held)' if self.replaced else ''}; database identity {self.identity}, "
                f"new jobs start at #{self.next_job_id}")


async def copy_store(source: Store, target: Store, *, force: bool = False) -> CopyReport:
    """Copy every row of an SQLite store into a PostgreSQL one, in one transaction on the target.

    A target that already holds jobs, settings or state is refused unless `force`, which replaces it. The
    target store's identity is reloaded, so it goes on making references as the copied database did.
    """
    if not isinstance(source, SqliteStore) or not isinstance(target, PostgresStore):
        raise StoreError(f"a copy goes from SQLite into PostgreSQL, not from {source.kind} into {target.kind}")
    if source.path == ":memory:":
        raise StoreError("an in-memory SQLite database cannot be copied: it is seen by its own connection only")
    try:
        async with _snapshot(source.path) as snapshot, target.transaction() as conn:
            # Nothing else reads or writes the target until the copy is committed (or rolled back whole).
            await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
            held = await _held(conn)
            if held and not force:
                raise TargetNotEmpty(f"{target.description} is not empty (it holds {', '.join(held)}): a copy would "
                                 "replace all of it; force it to do so")
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
            rows = {table: await _copy_table(snapshot, conn, table) for table in TABLES}
            next_job_id = await _continue_ids(snapshot, conn)
    except (sqlite3.Error, asyncpg.PostgresError) as exc:
        raise StoreError(f"copying {source.description} into {target.description} failed: {exc}") from None
    identity = await target.reload_identity()
    return CopyReport(source.description, target.description, identity, rows, next_job_id, bool(held))


@asynccontextmanager
async def _snapshot(path: str) -> AsyncIterator[aiosqlite.Connection]:
    """A connection of its own to the SQLite file, inside one read transaction: every table is read as of the
    same moment, even while the bot goes on writing (WAL)."""
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("BEGIN")
        yield db
    finally:
        await db.execute("ROLLBACK")
        await db.close()


async def _held(conn: Connection) -> list[str]:
    """What the target already holds, in words (a fresh database holds only its own identity)."""
    found = []
    for table, words in CONTENT.items():
        count = int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608 - our tables
        if count:
            found.append(f"{count} {words}")
    state = await conn.fetchrow("SELECT webhook_secret, paused_reason, account_remix FROM relay_state")
    if state is not None and state["webhook_secret"]:
        found.append("a webhook secret")
    if state is not None and (state["paused_reason"] or state["account_remix"]):
        found.append("a pause or Remix state")
    return found


def _caster(data_type: str, nullable: bool) -> Callable[[Any], Any]:
    """SQLite's value as the PostgreSQL column takes it (its INTEGER flags as BOOLEAN, its JSON text as JSON)."""
    def cast(value: Any) -> Any:
        if data_type == "json" and value == "":
            value = None if nullable else "[]"
        if value is None:
            return None
        if data_type == "boolean":
            return bool(value)
        if data_type in {"bigint", "integer", "smallint"}:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            return int(value)
        if data_type == "double precision":
            return float(value)
        if data_type == "bytea":
            return bytes(value)
        return value if isinstance(value, str) else str(value)
    return cast


async def _copy_table(snapshot: aiosqlite.Connection, conn: Connection, table: str) -> int:
    """Stream one table across with COPY; the number of rows."""
    columns = {str(r["column_name"]): _caster(str(r["data_type"]), bool(r["nullable"]))
               for r in await conn.fetch(COLUMNS_SQL, table)}
    async with snapshot.execute(f"PRAGMA table_info({table})") as cur:
        theirs = {str(row[1]) for row in await cur.fetchall()}
    if theirs != set(columns):
        raise StoreError(f"table {table} differs between the databases (only in SQLite: "
                         f"{sorted(theirs - set(columns))}, only in PostgreSQL: {sorted(set(columns) - theirs)})")
    names = list(columns)
    casts = list(columns.values())
    sent = 0

    async def records() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal sent
        async with snapshot.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1") as cur:  # noqa: S608
            while batch := await cur.fetchmany(BATCH):
                for row in batch:
                    try:
                        values = tuple(cast(value) for cast, value in zip(casts, row, strict=True))
                    except ValueError as exc:
                        raise StoreError(f"{table} row {row[0]}: {exc}") from None
                    sent += 1
                    yield values

    status = await conn.copy_records_to_table(table, records=records(), columns=names)
    if status != f"COPY {sent}":
        raise StoreError(f"{table}: {sent} rows read, but PostgreSQL says {status!r}")
    return sent


async def _continue_ids(snapshot: aiosqlite.Connection, conn: Connection) -> int:
    """Set the target's job ids to go on past every id SQLite ever gave (AUTOINCREMENT remembers even those of
    rows since deleted); the next job's id."""
    async with snapshot.execute("SELECT MAX(id) FROM jobs") as cur:
        row = await cur.fetchone()
    highest = int(row[0] or 0) if row else 0
    async with snapshot.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'") as cur:
        row = await cur.fetchone()
    highest = max(highest, int(row[0] or 0) if row else 0)
    if highest:
        await conn.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), $1)", highest)
    return highest + 1


async def backup_sqlite(path: str, destination: str) -> None:
    """A consistent copy of the SQLite database at `path` (live or not) at `destination`, readable by its owner
    only, by SQLite's online backup API. Copying the file is not safe: a live WAL database keeps its latest
    commits in the -wal file."""
    await asyncio.to_thread(_backup, Path(path), Path(destination))


def _backup(source: Path, target: Path) -> None:
    if not source.is_file():
        raise StoreError(f"{source}: no such database file")
    if target.is_dir():
        raise StoreError(f"{target} is a folder: give the backup's file name (e.g. {target / source.name})")
    if target.exists() and target.resolve() == source.resolve():
        raise StoreError(f"{target} is the database itself: choose another destination")
    for beside in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        if beside.exists():
            # SQLite would read that file as part of the backup the next time it opens it.
            raise StoreError(f"{beside} exists: a database is in use at {target}; choose another destination")
    # Written beside the destination and renamed when whole: a failed backup never leaves a half file there.
    partial = target.with_name(f".{target.name}.partial")
    try:
        make_folder(str(target))
        partial.unlink(missing_ok=True)
        # Owner-only from its first byte, as the database is (it holds the callback secret); SQLite gives its
        # -journal the same mode, and the rename keeps it.
        owner_only(partial, create=True, database=str(target))
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
            src.execute("PRAGMA busy_timeout = 5000")
            # All pages in one step, under one read transaction: the copy is of one moment.
            src.backup(dst)
            # A single file, with no -wal of its own to lose on the way to wherever it is kept.
            dst.execute("PRAGMA journal_mode = DELETE")
            verdict = dst.execute("PRAGMA quick_check").fetchone()
        if verdict is None or verdict[0] != "ok":
            raise StoreError(f"the backup of {source} failed its check: {verdict}")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"backing up {source} to {target} failed: {exc}") from None
    except OSError as exc:  # the destination's folder: not writable, or full
        raise StoreError(f"backing up {source} to {target} failed: {exc.strerror or exc}") from None
    finally:
        # Suppressed: where the folder could not be made there is nothing to remove, and the error above says why.
        with suppress(OSError):
            partial.unlink(missing_ok=True)
            Path(f"{partial}-journal").unlink(missing_ok=True)
