"""The relay's memory: jobs and who owns them, the message that shows each, team settings, the relay's state.

`Store` is the contract (bot/store/base.py); `open_store` opens the configured one: PostgreSQL when a
DATABASE_URL is given (several bot processes may share it), else SQLite at DATABASE_PATH, the embedded default.
"""

from __future__ import annotations

from bot.store.base import JobStore, OneShotTaken, StateStore, Store, StoreError, TeamStore
from bot.store.postgres import PostgresStore, is_postgres_url, masked_url
from bot.store.records import job_ref
from bot.store.sqlite import SqliteStore

__all__ = ["JobStore", "OneShotTaken", "PostgresStore", "SqliteStore", "StateStore", "Store", "StoreError",
           "TeamStore", "job_ref", "open_store"]


async def open_store(database_path: str, database_url: str | None = None) -> Store:
    """The configured store, open and migrated: PostgreSQL at `database_url` when given, else SQLite."""
    if database_url:
        if not is_postgres_url(database_url):
            raise StoreError(f"DATABASE_URL {masked_url(database_url)} is not a PostgreSQL URL "
                             "(postgresql://... or postgres://...)")
        return await PostgresStore.open(database_url)
    return await SqliteStore.open(database_path)
