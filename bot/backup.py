"""`python -m bot backup PATH`: a consistent copy of the SQLite database, made while the bot runs (SQLite's online
backup reads a live database as of one moment, so no lock is needed), readable by its owner only; one line saying
where it went, how large it is and how many jobs it holds."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from bot.logs import SecretMasker
from bot.runner import Refused
from bot.settings import Settings
from bot.store.copy import backup_sqlite
from bot.store.postgres import masked_url

UNITS = ("KiB", "MiB", "GiB", "TiB")


async def backup(settings: Settings, masker: SecretMasker, *, destination: str) -> None:
    url = settings.database_url
    if url is not None:
        raise Refused(f"the database is PostgreSQL (DATABASE_URL {masked_url(url)}), which backup does not copy: "
                      "back it up with pg_dump (pg_dump --format=custom --file=relay.dump \"$DATABASE_URL\") or the "
                      "platform's own backups")
    source = settings.DATABASE_PATH
    if not await asyncio.to_thread(Path(source).exists):
        # Said here rather than by opening it, which would make an empty database where none was.
        raise Refused(f"there is no SQLite database at {source} (DATABASE_PATH) to back up")
    await backup_sqlite(source, destination)
    size, jobs = await asyncio.to_thread(_measure, Path(destination))
    print(masker.mask(f"backed up {source} to {destination}: {human_size(size)}, {jobs}"), flush=True)


def _measure(path: Path) -> tuple[int, str]:
    """The backup's size and its jobs in words, read from the backup itself (read-only: it is left as written)."""
    size = path.stat().st_size
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT COUNT(*) FROM jobs").fetchone()
        except sqlite3.OperationalError:
            return size, "no jobs table (is DATABASE_PATH the relay's database?)"
    return size, f"{int(row[0])} jobs"


def human_size(size: int) -> str:
    """`size` bytes as an operator reads it: 812 bytes, 48.0 KiB, 1.2 MiB."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in UNITS:
        value /= 1024
        if value < 1024 or unit == UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
