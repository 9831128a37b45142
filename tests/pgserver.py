"""A PostgreSQL server of the test session's own (a pytest plugin): made with initdb in a temporary folder,
started on a free loopback port, stopped when the session ends; a fresh database for each test that asks.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user, its folder given to it;
as anyone else it runs as that user. Each pytest-xdist worker starts a server of its own. The tests that
need it are never skipped: a session that cannot start it fails them with a message saying why.
"""

from __future__ import annotations

import asyncio
import grp
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

import asyncpg
import pytest

from tests.ports import free_port

T = TypeVar("T")

BINARIES: Final = ("initdb", "pg_ctl", "postgres")
DEBIAN: Final = Path("/usr/lib/postgresql")
SERVER_USER: Final = "postgres"
SUPERUSER: Final = "postgres"
# A role that must give its password (every other connection on loopback is trusted): the tests of a wrong
# password need a server that asks for one.
PASSWORD_USER: Final = "relay_password_user"
PASSWORD: Final = "s3cret-Pa55:word@x"
START_TRIES: Final = 5
# Durability is not what these tests are about: without fsync a database is made in milliseconds.
SERVER_OPTIONS: Final = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                         "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200")
HBA: Final = f"""\
local all all trust
host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


class ServerUnavailable(Exception):
    """The test server could not be made or started; the message says why and what to install."""


def find_bindir(path: str | None = None, debian: Path = DEBIAN) -> Path:
    """Where initdb, pg_ctl and postgres are: PG_BINDIR, else on PATH (`path`), else the newest of Debian's
    <debian>/<version>/bin (apt-get install postgresql puts them there, off PATH)."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    found = shutil.which("initdb", path=path)
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates.extend(sorted(debian.glob("*/bin"), key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
                             reverse=True))
    for bindir in candidates:
        if all((bindir / name).is_file() for name in BINARIES):
            return bindir
    raise ServerUnavailable(f"initdb, pg_ctl and postgres are neither on PATH nor in {debian}/*/bin: "
                            "install PostgreSQL (Debian: apt-get install postgresql)")


@dataclass
class _Runner:
    """Runs the server's commands as the user the server may run as."""

    as_postgres: bool
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def choose(cls) -> _Runner:
        # The caller's own PG* settings (PGDATA, PGPORT...) must not steer initdb and pg_ctl elsewhere.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        if os.geteuid() != 0:
            return cls(False, env)
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise ServerUnavailable(f"running as root, and there is no '{SERVER_USER}' user to run PostgreSQL as "
                                    "(PostgreSQL refuses root): create one, or run the tests as another user") from None
        return cls(True, env)

    def own(self, path: Path) -> None:
        if self.as_postgres:
            shutil.chown(path, SERVER_USER, grp.getgrgid(pwd.getpwnam(SERVER_USER).pw_gid).gr_name)

    def run(self, *command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        who: Mapping[str, Any] = ({"user": SERVER_USER, "group": pwd.getpwnam(SERVER_USER).pw_gid, "extra_groups": []}
                                  if self.as_postgres else {})
        return subprocess.run([str(part) for part in command], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=60, check=False, **who)


class PgServer:
    """A running server: URLs to its databases, and fresh databases on demand (from any thread or loop)."""

    def __init__(self, folder: Path, port: int, runner: _Runner, bindir: Path) -> None:
        self.folder = folder
        self.port = port
        self.host = "127.0.0.1"
        self._runner = runner
        self._bindir = bindir
        self._names = itertools.count(1)
        # Databases are made from a loop of the server's own, on its own thread, so that sync fixtures and async
        # tests alike can ask for one without sharing an event loop with the test.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pgserver", daemon=True)
        self._thread.start()

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str | None = None,
            port: int | None = None) -> str:
        # Percent-encoded, as a URL needs (the test password has ':' and '@' in it on purpose).
        secret = f":{quote(password, safe='')}" if password is not None else ""
        return f"postgresql://{user}{secret}@{self.host}:{port or self.port}/{database}"

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.url())
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def new_database(self) -> str:
        """A new empty database (nothing in it, not even the relay's schema); its URL."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"relay_{worker}_{next(self._names)}"
        # FILE_COPY copies the small template's files at once (faster than WAL_LOG for a database this size).
        self._call(self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY'))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self._call(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def password_user(self) -> tuple[str, str]:
        """A role that logs in only with its password (made on first use): its name and password."""
        self._call(self._admin(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PASSWORD_USER}') THEN
                CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}' CREATEDB;
            END IF; END $$"""))
        return PASSWORD_USER, PASSWORD

    def fetch(self, url: str, sql: str, *values: Any) -> list[dict[str, Any]]:
        """One statement in a database, as the superuser (to arrange or read what a test needs); its rows."""
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(url)
            try:
                return [dict(row) for row in await conn.fetch(sql, *values)]
            finally:
                await conn.close()
        return self._call(run())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        # Immediate: nothing here is worth the shutdown checkpoint; the folder goes next.
        self._runner.run(self._bindir / "pg_ctl", "stop", "-D", self.folder / "data", "-m", "immediate", "-w",
                         cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def start_server() -> PgServer:
    """initdb into a new temporary folder, then start the server on a free loopback port."""
    bindir = find_bindir()
    runner = _Runner.choose()
    folder = Path(tempfile.mkdtemp(prefix="relay-pg-"))
    try:
        runner.own(folder)
        data = folder / "data"
        made = runner.run(bindir / "initdb", "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C",
                          "--no-sync", "--no-instructions", cwd=folder)
        if made.returncode != 0:
            raise ServerUnavailable(f"initdb failed ({made.returncode}): {(made.stderr or made.stdout).strip()}")
        (data / "pg_hba.conf").write_text(HBA)
        log = folder / "server.log"
        for _ in range(START_TRIES):
            # Another process may take the free port before the server binds it: then try another one.
            port = free_port()
            started = runner.run(bindir / "pg_ctl", "start", "-w", "-t", "30", "-D", data, "-l", log,
                                 "-o", " ".join(("-p", str(port), "-k", str(folder), *SERVER_OPTIONS)), cwd=folder)
            if started.returncode == 0:
                return PgServer(folder, port, runner, bindir)
            if "could not bind" not in _tail(log, 40) and "in use" not in _tail(log, 40):
                break
        raise ServerUnavailable(f"pg_ctl start failed: {(started.stderr or started.stdout).strip()}\n{_tail(log)}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (one per xdist worker), started on first use and stopped at the end."""
    problem = ""
    try:
        server = start_server()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        problem = str(exc)
    if problem:  # outside the except: the message alone, not a chain of tracebacks
        pytest.fail(f"the test PostgreSQL server could not start: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    url = pg_server.new_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)
