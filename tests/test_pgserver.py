"""The test session's PostgreSQL server (tests/pgserver.py): where it finds PostgreSQL, and that it runs."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.pgserver import ServerUnavailable, find_bindir

SERVER = ("initdb", "pg_ctl", "postgres")


def _install(root: Path, version: str, names: tuple[str, ...] = SERVER) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for name in names:
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    return bindir


def test_debians_newest_version_is_found_off_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    _install(tmp_path, "9.6")
    newest = _install(tmp_path, "15")
    _install(tmp_path, "16", ("initdb",))  # a client-only install is not a server
    assert find_bindir(path=str(tmp_path / "empty"), debian=tmp_path) == newest


def test_path_comes_before_debians_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    on_path = _install(tmp_path / "local", "x")
    _install(tmp_path / "debian", "15")
    assert find_bindir(path=str(on_path), debian=tmp_path / "debian") == on_path


def test_without_postgresql_it_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    with pytest.raises(ServerUnavailable, match=r"install PostgreSQL \(Debian: apt-get install postgresql\)"):
        find_bindir(path=str(tmp_path), debian=tmp_path)


async def test_the_server_makes_a_fresh_database_per_test(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
        assert await conn.fetchval("SELECT inet_server_addr()::text") == "127.0.0.1/32"
    finally:
        await conn.close()
