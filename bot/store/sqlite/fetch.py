"""Reading a statement's rows in one trip to the database's thread.

aiosqlite runs each cursor call (execute, fetch, close) as its own trip to the connection's thread, and on a
busy bot those trips cost more than the statements: a progress callback's one UPDATE … RETURNING took three,
twice the CPU of one. `execute_fetchall` executes, fetches and closes in one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite


async def fetch_all(db: aiosqlite.Connection, sql: str, values: Iterable[Any] = ()) -> list[aiosqlite.Row]:
    """Every row of `sql` (a query, or a write with RETURNING, which is done once this returns)."""
    return list(await db.execute_fetchall(sql, tuple(values)))


async def fetch_one(db: aiosqlite.Connection, sql: str, values: Iterable[Any] = ()) -> aiosqlite.Row | None:
    """The first row of `sql`, or None."""
    rows = await db.execute_fetchall(sql, tuple(values))
    return next(iter(rows), None)
