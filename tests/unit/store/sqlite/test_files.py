"""The database's files: owner-only from the start, tightened when looser, and a path that cannot be a database
refused with a sentence that names it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import StoreError
from bot.store.sqlite.files import make_folder, owner_only, prepare


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # The worst a platform sets: every file world-writable unless the program says otherwise.
    saved = os.umask(0)
    try:
        yield
    finally:
        os.umask(saved)


def test_a_new_database_file_is_owner_only(tmp_path: Path, permissive_umask: None) -> None:
    db = tmp_path / "data" / "relay.db"
    prepare(str(db))
    assert db.is_file() and db.stat().st_size == 0
    assert mode(db) == 0o600


def test_looser_files_are_tightened_and_companions_too(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    for path in (db, tmp_path / "relay.db-wal", tmp_path / "relay.db-shm"):
        path.write_bytes(b"")
        path.chmod(0o644)
    prepare(str(db))
    assert [mode(p) for p in (db, tmp_path / "relay.db-wal", tmp_path / "relay.db-shm")] == [0o600] * 3
    assert not (tmp_path / "relay.db-journal").exists(), "only existing companions are touched"


def test_a_tighter_file_is_left_as_it_is(tmp_path: Path) -> None:
    lock = tmp_path / "relay.db.lock"
    lock.write_bytes(b"")
    lock.chmod(0o400)
    owner_only(lock, create=True)
    assert mode(lock) == 0o400


def test_a_parent_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    db = tmp_path / "data" / "sub" / "relay.db"
    with pytest.raises(StoreError) as caught:
        make_folder(str(db))
    assert str(caught.value) == f"database {db} cannot be created: {tmp_path / 'data'} is a file, not a folder"


def test_a_folder_in_place_of_the_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "relay.db").mkdir()
    with pytest.raises(StoreError) as caught:
        prepare(str(tmp_path / "relay.db"))
    assert str(caught.value) == f"database {tmp_path / 'relay.db'} is a folder, not a file"
