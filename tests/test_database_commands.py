"""`python -m bot migrate-db` and `python -m bot backup` as an operator types them: the SQLite database moved into
PostgreSQL whole, or backed up beside the running bot; every refusal one line and an exit status, nothing lost,
nothing made where nothing was, and never a password printed."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from bot.backends.useapi.simulator import Simulator
from bot.jobs import ALL_STATES
from bot.store import PostgresStore, SqliteStore
from tests.fakediscord import FakeDiscord
from tests.harness import SubprocessBot, bot_env, child_env
from tests.pgserver import PgServer
from tests.store.helpers import completed, new_job, running

TOKEN = "t" * 40  # any: neither command talks to Discord


def bot_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=child_env({"DISCORD_TOKEN": TOKEN, **env}),
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


async def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A bot or the fakes may be running on this test's loop: the blocking wait goes to a thread.
    return await asyncio.to_thread(bot_cli, *args, env=env, cwd=cwd)


async def sqlite_with_jobs(path: Path) -> str:
    """A database as a bot leaves it: three jobs, a callback secret; its identity."""
    store = await SqliteStore.open(str(path))
    try:
        await completed(store)
        await running(store)
        await new_job(store, prompt="still queued")
        await store.state.webhook_secret("the-callback-secret")
        return store.identity
    finally:
        await store.close()


def password_url(pg_server: PgServer, pg_url: str) -> tuple[str, str]:
    """The test database, reached as a role that must give its password (made its owner, so it may make the
    schema): the URL and the password."""
    user, password = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    pg_server.fetch(pg_url, f"ALTER DATABASE {database} OWNER TO {user}")
    return pg_server.url(database, user=user, password=password), password


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The refusals on stderr (the log's INFO lines, such as the database opening, may come before them)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def no_password(result: subprocess.CompletedProcess[str], password: str) -> None:
    said = result.stdout + result.stderr
    assert password not in said and quote(password, safe="") not in said


async def jobs_in(url: str) -> tuple[str, list[int]]:
    store = await PostgresStore.open(url)
    try:
        return store.identity, sorted(job.id for job in await store.jobs.in_states(ALL_STATES))
    finally:
        await store.close()


async def test_migrate_db_copies_everything_and_says_what_and_what_next(pg_server: PgServer, pg_url: str,
                                                                        tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    identity = await sqlite_with_jobs(db)
    url, password = password_url(pg_server, pg_url)
    masked = url.replace(quote(password, safe=""), "***")
    env = {"DATABASE_PATH": str(db), "DATABASE_URL": url}

    result = await cli("migrate-db", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report, after = result.stdout.splitlines()
    assert report.startswith(f"copied 3 jobs, 0 kept images, 0 editor links, 0 servers' settings, 0 members' limits, "
                             f"0 members' Remix choices, 0 command hashes from {db} to {masked}; database identity "
                             f"{identity}, new jobs start at #4")
    assert after.startswith("next: start the bot with this DATABASE_URL set")
    no_password(result, password)
    assert await jobs_in(url) == (identity, [1, 2, 3])

    # Again: the target holds what was copied, so it is refused until forced; nothing changes meanwhile.
    store = await SqliteStore.open(str(db))
    try:
        await new_job(store, prompt="made after the first copy")
    finally:
        await store.close()
    again = await cli("migrate-db", env=env, cwd=tmp_path)
    assert again.returncode == 2
    assert errors(again) == [
        f"error: {masked} is not empty (it holds 3 jobs, a webhook secret): a copy would replace all of it; force "
        "it to do so: run migrate-db again with --force (every bot on it stopped first)"]
    assert again.stdout == ""
    assert await jobs_in(url) == (identity, [1, 2, 3])
    forced = await cli("migrate-db", "--force", env=env, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "copied 4 jobs" in forced.stdout and "(replacing what it held)" in forced.stdout
    assert await jobs_in(url) == (identity, [1, 2, 3, 4])
    no_password(again, password)
    no_password(forced, password)


async def test_migrate_db_from_names_another_file(pg_url: str, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "old.db"
    other.parent.mkdir()
    identity = await sqlite_with_jobs(other)
    env = {"DATABASE_PATH": str(tmp_path / "data" / "relay.db"), "DATABASE_URL": pg_url}
    result = await cli("migrate-db", "--from", str(other), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from {other} to " in result.stdout
    assert await jobs_in(pg_url) == (identity, [1, 2, 3])
    assert not (tmp_path / "data").exists(), "DATABASE_PATH was not touched"


async def test_migrate_db_refuses_in_one_line_and_makes_nothing(pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "data" / "relay.db"
    cases = [
        ({"DATABASE_PATH": str(db)}, [],
         "error: DATABASE_URL is not set: migrate-db copies the SQLite database into the PostgreSQL database it names "
         "(postgresql://user:password@host:5432/name)"),
        ({"DATABASE_PATH": str(db), "DATABASE_URL": "mysql://relay:hunter2-secret@db/relay"}, [],
         "error: DATABASE_URL mysql://relay:***@db/relay is not a PostgreSQL URL (postgresql://... or postgres://...): "
         "migrate-db copies into PostgreSQL only"),
        ({"DATABASE_PATH": str(db), "DATABASE_URL": pg_url}, [],
         f"error: there is no SQLite database at {db} (DATABASE_PATH) to migrate: give its path with --from, or set "
         "DATABASE_PATH"),
        ({"DATABASE_PATH": str(db), "DATABASE_URL": pg_url}, ["--from", str(tmp_path / "nowhere.db")],
         f"error: there is no SQLite database at {tmp_path / 'nowhere.db'} (--from) to migrate: give its path with "
         "--from, or set DATABASE_PATH"),
        ({"DATABASE_PATH": str(db), "DATABASE_URL": pg_url}, ["--from", str(tmp_path)],
         f"error: {tmp_path} (--from) is a folder, not an SQLite database file"),
    ]
    for env, args, line in cases:
        result = await cli("migrate-db", *args, env=env, cwd=tmp_path)
        assert (result.returncode, errors(result), result.stdout) == (2, [line], "")
        assert "hunter2-secret" not in result.stderr
    assert names(tmp_path) == [], "no database, folder or lock was made"


async def test_migrate_db_says_when_postgresql_cannot_be_reached(pg_server: PgServer, pg_url: str,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    await sqlite_with_jobs(db)
    url, password = password_url(pg_server, pg_url)
    wrong = url.replace(quote(password, safe=""), quote(password + "-wrong", safe=""))
    result = await cli("migrate-db", env={"DATABASE_PATH": str(db), "DATABASE_URL": wrong}, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = errors(result)
    assert line.startswith(f"error: PostgreSQL database postgresql://{pg_server.password_user()[0]}:***@127.0.0.1:")
    assert "the password was refused" in line
    no_password(result, password)
    no_password(result, password + "-wrong")


async def test_beside_a_running_bot_backup_works_and_migrate_db_is_refused(
        fake_discord: FakeDiscord, sim: Simulator, pg_url: str, tmp_path: Path) -> None:
    db = tmp_path / "data" / "relay.db"
    db.parent.mkdir()
    identity = await sqlite_with_jobs(db)
    env = bot_env(fake_discord, sim, db)
    bot = SubprocessBot(env, tmp_path / "bot.log")
    await bot.start(fake_discord)
    try:
        destination = tmp_path / "backups" / "relay-backup.db"
        backed = await cli("backup", str(destination), env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
        assert backed.returncode == 0, backed.stderr
        (line,) = backed.stdout.splitlines()
        size = destination.stat().st_size
        assert line == f"backed up {db} to {destination}: {size / 1024:.1f} KiB, 3 jobs"
        assert stat.S_IMODE(destination.stat().st_mode) == 0o600
        with closing(sqlite3.connect(destination)) as copy:
            assert copy.execute("SELECT database_id FROM relay_state").fetchone() == (identity,)
            assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone() == (3,)

        refused = await cli("migrate-db", env={"DATABASE_PATH": str(db), "DATABASE_URL": pg_url}, cwd=tmp_path)
        assert refused.returncode == 3
        assert errors(refused) == [
            f"error: a bot is running on {db} (it holds {db}.lock): stop it first, so that no job it writes after "
            "the copy is left behind, then run migrate-db again"]
        assert bot.proc is not None and bot.proc.returncode is None, "the bot went on"
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()
    # Stopped, it may be moved.
    moved = await cli("migrate-db", env={"DATABASE_PATH": str(db), "DATABASE_URL": pg_url}, cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert await jobs_in(pg_url) == (identity, [1, 2, 3])


async def test_backup_refuses_in_one_line(pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    url, password = password_url(pg_server, pg_url)
    masked = url.replace(quote(password, safe=""), "***")
    db = tmp_path / "data" / "relay.db"
    out = tmp_path / "backup.db"
    on_postgres = await cli("backup", str(out), env={"DATABASE_PATH": str(db), "DATABASE_URL": url}, cwd=tmp_path)
    assert on_postgres.returncode == 2
    assert errors(on_postgres) == [
        f"error: the database is PostgreSQL (DATABASE_URL {masked}), which backup does not copy: back it up with "
        "pg_dump (pg_dump --format=custom --file=relay.dump \"$DATABASE_URL\") or the platform's own backups"]
    no_password(on_postgres, password)

    missing = await cli("backup", str(out), env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
    assert missing.returncode == 2
    assert errors(missing) == [f"error: there is no SQLite database at {db} (DATABASE_PATH) to back up"]
    assert names(tmp_path) == [], "nothing made at DATABASE_PATH nor at PATH"

    db.parent.mkdir()
    await sqlite_with_jobs(db)
    into_a_folder = await cli("backup", str(tmp_path), env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
    assert into_a_folder.returncode == 2
    assert errors(into_a_folder) == [
        f"error: {tmp_path} is a folder: give the backup's file name (e.g. {tmp_path / 'relay.db'})"]
    onto_itself = await cli("backup", str(db), env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
    assert onto_itself.returncode == 2
    assert errors(onto_itself) == [f"error: {db} is the database itself: choose another destination"]
    no_path = await cli("backup", env={"DATABASE_PATH": str(db)}, cwd=tmp_path)
    assert no_path.returncode == 2 and "the following arguments are required: PATH" in no_path.stderr


def test_each_command_has_its_own_help(tmp_path: Path) -> None:
    for command, words in (("migrate-db", ("--force", "--from PATH", "DATABASE_URL", "Stop the bot first")),
                           ("backup", ("PATH", "Safe while the bot runs", "pg_dump"))):
        result = subprocess.run([sys.executable, "-m", "bot", command, "--help"], cwd=tmp_path, env=child_env({}),
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: python -m bot {command} [-h]")
        said = " ".join(result.stdout.split())  # as wrapped at any width
        assert all(word in said for word in words), result.stdout
    assert list(tmp_path.iterdir()) == []
