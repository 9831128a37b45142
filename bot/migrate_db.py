"""`python -m bot migrate-db [--force] [--from PATH]`: the SQLite database copied whole into the PostgreSQL one at
DATABASE_URL (bot.store.copy.copy_store), for the move from one bot process to several.

The copy reads SQLite as of one moment, so it is safe beside a running bot, but whatever that bot writes after
that moment would stay behind in SQLite: a bot holding the file's instance lock is refused, and the lock is held
for the length of the copy, so that none starts on the file meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bot.logs import SecretMasker
from bot.runner import EXIT_LOCKED, InstanceLocked, Refused, instance_lock
from bot.settings import Settings
from bot.store import PostgresStore, SqliteStore
from bot.store.copy import CopyReport, TargetNotEmpty, copy_store
from bot.store.postgres import is_postgres_url, masked_url


async def migrate_db(settings: Settings, masker: SecretMasker, *, source: str | None, force: bool) -> None:
    url = settings.database_url
    if url is None:
        raise Refused("DATABASE_URL is not set: migrate-db copies the SQLite database into the PostgreSQL database "
                      "it names (postgresql://user:password@host:5432/name)")
    if not is_postgres_url(url):
        raise Refused(f"DATABASE_URL {masked_url(url)} is not a PostgreSQL URL (postgresql://... or postgres://...): "
                      "migrate-db copies into PostgreSQL only")
    path = source or settings.DATABASE_PATH
    found = Path(path)
    named = "--from" if source else "DATABASE_PATH"
    # Looked at before anything opens it: opening would make an empty database where none was, and copy that.
    if not await asyncio.to_thread(found.exists):
        raise Refused(f"there is no SQLite database at {path} ({named}) to migrate: give its path with --from, or "
                      "set DATABASE_PATH")
    if await asyncio.to_thread(found.is_dir):
        raise Refused(f"{path} ({named}) is a folder, not an SQLite database file")
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(instance_lock(path, wait=0))
        except InstanceLocked:
            raise Refused(f"a bot is running on {path} (it holds {path}.lock): stop it first, so that no job it "
                          "writes after the copy is left behind, then run migrate-db again", EXIT_LOCKED) from None
        report = await _copy(path, url, force=force)
    print(masker.mask(str(report)), flush=True)
    print(masker.mask(f"next: start the bot with this DATABASE_URL set: it uses PostgreSQL from now on and no longer "
                      f"reads {path}, which stays as it was"), flush=True)


async def _copy(path: str, url: str, *, force: bool) -> CopyReport:
    source = await SqliteStore.open(path)
    try:
        target = await PostgresStore.open(url)
        try:
            return await copy_store(source, target, force=force)
        except TargetNotEmpty as exc:
            raise Refused(f"{exc}: run migrate-db again with --force (every bot on it stopped first)") from None
        finally:
            await target.close()
    finally:
        await source.close()
