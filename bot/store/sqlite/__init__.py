"""The relay's memory in one SQLite file: the embedded default, for one bot process at a time."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiosqlite

from bot.store.base import StoreError
from bot.store.sqlite.coordination import SqliteCoordination
from bot.store.sqlite.files import prepare
from bot.store.sqlite.images import SqliteImages
from bot.store.sqlite.jobs import SqliteJobs
from bot.store.sqlite.links import SqliteLinks
from bot.store.sqlite.migrations import MIGRATIONS, REBUILDS, split_sql
from bot.store.sqlite.notices import SqliteNotices
from bot.store.sqlite.state import SqliteState
from bot.store.sqlite.teams import SqliteTeams

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

# A readiness probe waits this long for the database (a busy one waits up to busy_timeout, 5 s, for its lock).
PROBE_SECONDS = 2.0


class SqliteStore:
    """One aiosqlite connection: `jobs`, `teams`, `state`, `images`, `links` and `notices`, each with its own typed
    accessors, and the coordination of the one process there is (`coordination`)."""

    kind = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: str, identity: str) -> None:
        self._db = db
        self.path = path
        self.identity = identity
        self.jobs = SqliteJobs(db, identity)
        self.teams = SqliteTeams(db)
        self.state = SqliteState(db)
        self.images = SqliteImages(db)
        self.links = SqliteLinks(db)
        self.notices = SqliteNotices(db)
        self.coordination = SqliteCoordination(db, self.jobs, identity)

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        """Open (creating folders and schema as needed) the database at `path`; StoreError, naming it, when it
        cannot be used."""
        if path != ":memory:":
            prepare(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(_unusable(path, exc)) from None
        try:
            db.row_factory = aiosqlite.Row
            # WAL lets readers (/jobs) run beside the writer; NORMAL is durable against a killed process,
            # which is the failure we design for (power loss may drop the last commit, never corrupt).
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await _migrate(db)
            identity = await SqliteState(db).identity()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(_unusable(path, exc)) from None
        except BaseException:
            await db.close()
            raise
        return cls(db, path, identity)

    async def close(self) -> None:
        await self.coordination.close()
        await self._db.close()

    async def problem(self, timeout: float = PROBE_SECONDS) -> str | None:
        """None when the database answers a query over the relay's own tables; else what is wrong (for /readyz)."""
        try:
            async with asyncio.timeout(timeout), self._db.execute(
                    "SELECT (SELECT COUNT(*) FROM relay_state), (SELECT MAX(id) FROM jobs)") as cursor:
                await cursor.fetchone()
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's "Connection closed"
            return f"does not answer ({exc})"
        return None

    async def summary(self) -> tuple[int, int]:
        """The schema version and the number of jobs, for `python -m bot check`."""
        return await _version(self._db), await self.jobs.count_all()

    @property
    def description(self) -> str:
        return self.path


def _unusable(path: str, exc: sqlite3.Error) -> str:
    """What is wrong with the database at `path`, in a sentence an operator can act on."""
    if getattr(exc, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return (f"database {path} is damaged or is not a SQLite database ({exc}): restore it from a backup, or move "
                "it away to start with an empty one (the buttons of old results then stop working)")
    return f"database {path} cannot be used ({exc})"


async def _version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _migrate(db: aiosqlite.Connection) -> None:
    version = await _version(db)
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        rebuild = number in REBUILDS
        if rebuild:
            # Only outside a transaction does this take effect (SQLite's recipe for reshaping a table).
            await db.execute("PRAGMA foreign_keys=OFF")
        # executescript would commit on its own; run the statements inside one explicit transaction.
        await db.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(migration, str):
                for statement in split_sql(migration):
                    await db.execute(statement)
            else:
                await migration(db)
            if rebuild:
                async with db.execute("PRAGMA foreign_key_check") as cur:
                    broken = list(await cur.fetchall())
                if broken:
                    raise RuntimeError(f"migration {number} broke {len(broken)} foreign keys")
            await db.execute(f"PRAGMA user_version = {number}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        finally:
            if rebuild:
                await db.execute("PRAGMA foreign_keys=ON")
        log.info("database migrated to version %d", number)
