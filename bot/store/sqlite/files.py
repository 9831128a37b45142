"""The database's files on disk: its folder made, the file and its companions (-wal, -shm, the instance lock)
readable by their owner only, since the database holds the callback secret; a path that cannot hold a
database refused with a sentence naming it."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from bot.store.base import StoreError

log = logging.getLogger(__name__)

# SQLite makes -wal and -shm (and -journal) with the database file's own mode, so a new database made 0600 keeps
# them 0600; ones left by an older release, or restored from a backup, may be looser.
COMPANIONS = ("-wal", "-shm", "-journal")
GROUP_OR_OTHERS = 0o077


def prepare(path: str) -> None:
    """Before SQLite opens `path`: its folder exists, the file exists owner-only, and no companion is looser."""
    make_folder(path)
    owner_only(Path(path), create=True, database=path)
    for suffix in COMPANIONS:
        owner_only(Path(path + suffix), create=False, database=path)


def make_folder(path: str) -> None:
    """Make the database's folder (and its parents); StoreError when something in the way is a file."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise StoreError(f"database {path} cannot be created: {blocking} is a file, not a folder") from None
    except OSError as exc:
        raise StoreError(f"database {path} cannot be created: cannot make the folder {folder} "
                         f"({exc.strerror})") from None


def owner_only(file: Path, *, create: bool, database: str | None = None) -> None:
    """Create `file` readable and writable by its owner only, or take group and others' access away from it."""
    database = database or str(file)
    if create:
        try:
            # O_EXCL: made here with 0600 (whatever the umask adds, it only takes away), or already there.
            os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return
        except FileExistsError:
            pass
        except IsADirectoryError:
            raise StoreError(f"database {database} is a folder, not a file") from None
        except OSError as exc:
            raise StoreError(f"database {database} cannot be created: {file} ({exc.strerror})") from None
    try:
        found = file.stat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(found.st_mode):
        raise StoreError(f"database {database} is a folder, not a file")
    mode = stat.S_IMODE(found.st_mode)
    if not mode & GROUP_OR_OTHERS:
        return
    tightened = mode & ~GROUP_OR_OTHERS
    try:
        file.chmod(tightened)
    except OSError as exc:  # not our file (a shared volume): say so, and let SQLite decide whether it can open it
        log.warning("%s is readable by others (%04o) and could not be made owner-only: %s", file, mode, exc.strerror)
        return
    log.warning("%s was readable by others (%04o); now %04o", file, mode, tightened)
