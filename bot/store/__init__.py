"""The relay's memory: jobs and who owns them, the message that shows each, team settings, the relay's state.

`Store` is the contract (bot/store/base.py); `open_store` opens the configured one: SQLite at DATABASE_PATH,
the embedded default.
"""

from __future__ import annotations

from bot.store.base import JobStore, OneShotTaken, StateStore, Store, StoreError, TeamStore
from bot.store.records import job_ref
from bot.store.sqlite import SqliteStore

__all__ = ["JobStore", "OneShotTaken", "SqliteStore", "StateStore", "Store", "StoreError", "TeamStore",
           "job_ref", "open_store"]


async def open_store(database_path: str) -> Store:
    """The configured store, open and migrated."""
    return await SqliteStore.open(database_path)
