"""The relay's memory: jobs and who owns them, the message that shows each, team settings, the relay's state.

`Store` is the store the bot opens; each part (`jobs`, `teams`, `state`) has its own typed accessors.
"""

from __future__ import annotations

from bot.store.base import OneShotTaken, StoreError
from bot.store.records import job_ref
from bot.store.sqlite import SqliteStore

Store = SqliteStore

__all__ = ["OneShotTaken", "SqliteStore", "Store", "StoreError", "job_ref"]
