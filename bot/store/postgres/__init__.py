"""The relay's memory in PostgreSQL (DATABASE_URL): one database that several bot processes can share.

It keeps the contract of `bot.store.base` exactly as the SQLite store does (tests/store/ holds both to it),
through asyncpg and a small pool of connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.store.postgres.connect import (
    POOL_SIZE,
    SERVER_ERRORS,
    Connection,
    Pool,
    is_postgres_url,
    masked_url,
    open_pool,
    store_error,
)
from bot.store.postgres.coordination import PostgresCoordination
from bot.store.postgres.images import PostgresImages
from bot.store.postgres.jobs import PostgresJobs
from bot.store.postgres.links import PostgresLinks
from bot.store.postgres.migrations import migrate, version
from bot.store.postgres.notices import PostgresNotices
from bot.store.postgres.state import PostgresState
from bot.store.postgres.teams import PostgresTeams

__all__ = ["PostgresStore", "is_postgres_url", "masked_url"]

log = logging.getLogger(__name__)

# A readiness probe waits this long for the database.
PROBE_SECONDS = 2.0


class PostgresStore:
    """A pool of connections to one database: `jobs`, `teams`, `state`, `images`, `links` and `notices`, each with
    its own typed accessors, and this process's part in sharing the database with others (`coordination`)."""

    kind = "postgresql"

    def __init__(self, pool: Pool, url: str, identity: str) -> None:
        self._pool = pool
        self._url = url
        self.identity = identity
        self.jobs = PostgresJobs(pool, identity)
        self.teams = PostgresTeams(pool)
        self.state = PostgresState(pool)
        self.images = PostgresImages(pool)
        self.links = PostgresLinks(pool)
        self.notices = PostgresNotices(pool)
        self.coordination = PostgresCoordination(pool, url, self.jobs)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = POOL_SIZE) -> PostgresStore:
        """Connect to the database at `url` and bring its schema up to date (once, whoever else starts now)."""
        pool = await open_pool(url, size=pool_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            identity = await PostgresState(pool).identity()
        except SERVER_ERRORS as exc:
            pool.terminate()  # nothing to finish on connections that failed: do not wait on them
            raise store_error(url, exc) from None
        except BaseException:
            pool.terminate()
            raise
        log.info("database %s open", masked_url(url))
        return cls(pool, url, identity)

    async def close(self) -> None:
        await self.coordination.close()
        await self._pool.close()

    async def summary(self) -> tuple[int, int]:
        """The schema version and the number of jobs, for `python -m bot check`."""
        async with self._pool.acquire() as conn:
            current = await version(conn)
        return current, await self.jobs.count_all()

    async def problem(self, timeout: float = PROBE_SECONDS) -> str | None:
        """None when the database answers a query over the relay's own tables; else what is wrong (for /readyz)."""
        try:
            async with asyncio.timeout(timeout):
                await self._pool.fetchrow("SELECT (SELECT COUNT(*) FROM relay_state), (SELECT MAX(id) FROM jobs)")
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except SERVER_ERRORS as exc:  # InterfaceError among them: the pool is closed
            return f"does not answer ({exc})"
        return None

    @property
    def description(self) -> str:
        return masked_url(self._url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One connection in one transaction, for work done in bulk (copying a database in)."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    async def reload_identity(self) -> str:
        """Read the identity again, after a copy replaced it: references made from now on carry the new one."""
        self.identity = self.jobs.identity = await self.state.identity()
        return self.identity
