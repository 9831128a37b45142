"""Every store test runs against both stores: SQLite in a file of the test's own, PostgreSQL in a fresh
database on the session's server (tests/pgserver.py). Nothing is mocked: each runs the real SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.store import PostgresStore, SqliteStore, Store
from tests.pgserver import PgServer

KINDS = ("sqlite", "postgresql")


@dataclass
class Rig:
    """One database of either kind: open it (again), or run SQL on it behind the store's back."""

    kind: str
    where: str  # the SQLite file, or the PostgreSQL URL
    server: PgServer | None = None
    _open: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store: Store = (await SqliteStore.open(self.where) if self.kind == "sqlite"
                        else await PostgresStore.open(self.where))
        self._open.append(store)
        return store

    async def reopen(self, store: Store) -> Store:
        """Close `store` and open the same database again, as a restarted process would."""
        await self.close(store)
        return await self.open()

    async def close(self, store: Store) -> None:
        if store in self._open:
            self._open.remove(store)
            await store.close()

    async def close_all(self) -> None:
        for store in list(self._open):
            await self.close(store)

    def fetch(self, sql: str, *values: Any) -> list[dict[str, Any]]:
        """One statement written for both dialects (placeholders as ?), behind the store's back: to set up what
        the store never writes, or to read what it wrote."""
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.where)) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(row) for row in db.execute(sql, values)]
                db.commit()
            return rows
        assert self.server is not None
        numbered = sql
        for number in range(1, len(values) + 1):
            numbered = numbered.replace("?", f"${number}", 1)
        return self.server.fetch(self.where, numbered, *values)


@pytest.fixture(params=KINDS)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, PgServer | None]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "relay.db"), None
    # Asked for only here, so that a run of the SQLite half alone (-k sqlite) starts no server.
    url: str = request.getfixturevalue("pg_url")
    server: PgServer = request.getfixturevalue("pg_server")
    return "postgresql", url, server


@pytest.fixture
async def rig(where: tuple[str, str, PgServer | None]) -> AsyncIterator[Rig]:
    kind, place, server = where
    made = Rig(kind, place, server)
    try:
        yield made
    finally:
        await made.close_all()


@pytest.fixture
async def store(rig: Rig) -> Store:
    return await rig.open()
