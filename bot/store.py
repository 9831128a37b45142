"""The relay's memory in SQLite: jobs and who owns them, the message that shows each, and per-server settings.

Every state change is one statement guarded by the state it expects, so a repeated or stale update
(a duplicate callback, a poll racing a callback, a restart in the middle) changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

# Local job states. 'queued' waits for a Midjourney slot, 'submitting' has a useapi call in flight,
# 'running' is accepted by useapi; the rest are final.
QUEUED: Final = "queued"
SUBMITTING: Final = "submitting"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
MODERATED: Final = "moderated"
CANCELLED: Final = "cancelled"
DUPLICATE: Final = "duplicate"  # a U button already executed: the card points at the existing result
FINAL_STATES: Final = frozenset({COMPLETED, FAILED, MODERATED, CANCELLED, DUPLICATE})
ACTIVE_STATES: Final = frozenset({SUBMITTING, RUNNING})
ALL_STATES: Final = (QUEUED, SUBMITTING, RUNNING, COMPLETED, FAILED, MODERATED, CANCELLED, DUPLICATE)

# Numbered migrations, each applied in one transaction and recorded in PRAGMA user_version.
MIGRATIONS: Final[Sequence[str]] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        parent_id INTEGER REFERENCES jobs(id),
        button TEXT,
        prompt TEXT NOT NULL,
        button_prompt TEXT,
        useapi_jobid TEXT UNIQUE,
        status TEXT NOT NULL,
        progress INTEGER,
        buttons TEXT NOT NULL DEFAULT '[]',
        job_json TEXT,
        message_id INTEGER,
        extra_message_ids TEXT NOT NULL DEFAULT '[]',
        image_url TEXT,
        published INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        error_code INTEGER,
        duplicate_of INTEGER REFERENCES jobs(id),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        simulated INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        last_event_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_owner ON jobs(guild_id, owner_id, id DESC);
    CREATE INDEX jobs_parent ON jobs(parent_id);
    CREATE INDEX jobs_unpublished ON jobs(published) WHERE published = 0;
    """,
    """
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL DEFAULT 'owner',
        policy_role_id INTEGER,
        gallery_channel_id INTEGER,
        admin_channel_id INTEGER,
        daily_quota INTEGER,
        queue_limit INTEGER
    );
    CREATE TABLE member_limits (
        guild_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        daily_quota INTEGER,
        queue_limit INTEGER,
        PRIMARY KEY (guild_id, user_id)
    );
    CREATE TABLE user_settings (
        user_id INTEGER PRIMARY KEY,
        remix INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_owner_created ON jobs(guild_id, owner_id, created_at);
    """,
)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of `jobs`, as the rest of the relay sees it."""

    id: int
    guild_id: int
    channel_id: int
    owner_id: int
    parent_id: int | None
    button: str | None
    prompt: str
    button_prompt: str | None
    useapi_jobid: str | None
    status: str
    progress: int | None
    buttons: tuple[str, ...]
    job_json: dict[str, Any] | None
    message_id: int | None
    extra_message_ids: tuple[int, ...]
    image_url: str | None
    published: bool
    error: str | None
    error_code: int | None
    duplicate_of: int | None
    attempts: int
    not_before: float
    simulated: bool
    created_at: float
    updated_at: float
    submitted_at: float | None
    last_event_at: float | None
    finished_at: float | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def kind(self) -> str:
        return "button" if self.parent_id is not None else "imagine"

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> JobRecord:
        data = dict(row)
        data["buttons"] = tuple(json.loads(data["buttons"]))
        data["extra_message_ids"] = tuple(json.loads(data["extra_message_ids"]))
        data["job_json"] = json.loads(data["job_json"]) if data["job_json"] else None
        data["published"] = bool(data["published"])
        data["simulated"] = bool(data["simulated"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class JobBrief:
    """The few columns of a job that the queue order and non-final edits need (no JSON to decode)."""

    id: int
    owner_id: int
    channel_id: int
    message_id: int | None
    error: str | None
    status: str = QUEUED


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """One server's choices: who may click whose buttons, where alerts and the gallery go, its limits."""

    guild_id: int
    policy: str = "owner"  # 'owner', 'role' (owner plus policy_role_id) or 'everyone'
    policy_role_id: int | None = None
    gallery_channel_id: int | None = None
    admin_channel_id: int | None = None
    daily_quota: int | None = None  # None: the USER_DAILY_QUOTA setting
    queue_limit: int | None = None  # None: the USER_MAX_QUEUED setting


@dataclass(frozen=True, slots=True)
class MemberLimits:
    """An admin's override of the server's limits for one member (None: the server's default)."""

    guild_id: int
    user_id: int
    daily_quota: int | None = None
    queue_limit: int | None = None


class Store:
    """The one aiosqlite connection of the process; open with `Store.open()`, close with `close()`."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: str) -> Store:
        """Open (creating folders and schema as needed) the database at `path`."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        # WAL lets readers (/jobs) run beside the writer; NORMAL is durable against a killed process,
        # which is the failure we design for (power loss may drop the last commit, never corrupt).
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db, path)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def summary(self) -> tuple[int, int]:
        """The schema version and the number of jobs, for `python -m bot check`."""
        async with self._db.execute("PRAGMA user_version") as cur:
            version = await cur.fetchone()
        async with self._db.execute("SELECT COUNT(*) FROM jobs") as cur:
            jobs = await cur.fetchone()
        return (int(version[0]) if version else 0), (int(jobs[0]) if jobs else 0)

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript would commit on its own; run the statements inside one explicit transaction.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(script):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number}")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            log.info("database migrated to version %d", number)

    # -- meta ---------------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def meta_setdefault(self, key: str, value: str) -> str:
        """Store `value` under `key` unless one is there already; return what is stored."""
        await self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        stored = await self.get_meta(key)
        assert stored is not None
        return stored

    # -- jobs: creation and lookup -------------------------------------------------------------------

    async def create_job(
        self,
        *,
        guild_id: int,
        channel_id: int,
        owner_id: int,
        prompt: str,
        parent_id: int | None = None,
        button: str | None = None,
        button_prompt: str | None = None,
        simulated: bool = False,
    ) -> JobRecord:
        now = time.time()
        async with self._db.execute(
            """INSERT INTO jobs (guild_id, channel_id, owner_id, parent_id, button, prompt, button_prompt, status,
                                 simulated, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *""",
            (guild_id, channel_id, owner_id, parent_id, button, prompt, button_prompt, QUEUED, int(simulated),
             now, now),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return JobRecord.from_row(row)

    async def get_job(self, job_id: int) -> JobRecord | None:
        async with self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return JobRecord.from_row(row) if row else None

    async def get_by_useapi_jobid(self, jobid: str) -> JobRecord | None:
        async with self._db.execute("SELECT * FROM jobs WHERE useapi_jobid = ?", (jobid,)) as cur:
            row = await cur.fetchone()
        return JobRecord.from_row(row) if row else None

    async def import_job(self, *, guild_id: int, channel_id: int, owner_id: int, useapi_jobid: str, prompt: str,
                         buttons: Sequence[str], job_json: dict[str, Any], created_at: float | None = None,
                         simulated: bool = False) -> JobRecord:
        """Record a completed job made outside this bot (a jobid pasted into /button) so its buttons work.

        It is inserted already completed and published, in one statement, so the scheduler never sees it
        queued and nothing is posted for it; a job already known by that jobid is returned as it is.
        """
        now = time.time()
        made = created_at if created_at is not None else now
        await self._db.execute(
            """INSERT OR IGNORE INTO jobs (guild_id, channel_id, owner_id, prompt, useapi_jobid, status, progress,
                                           buttons, job_json, published, simulated, created_at, updated_at,
                                           finished_at)
               VALUES (?, ?, ?, ?, ?, ?, 100, ?, ?, 1, ?, ?, ?, ?)""",
            (guild_id, channel_id, owner_id, prompt, useapi_jobid, COMPLETED, _encode("buttons", buttons),
             _encode("job_json", job_json), int(simulated), made, now, made),
        )
        job = await self.get_by_useapi_jobid(useapi_jobid)
        assert job is not None
        return job

    async def jobs_in(self, states: Iterable[str]) -> list[JobRecord]:
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        async with self._db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY id", wanted) as cur:  # noqa: S608
            rows = await cur.fetchall()
        return [JobRecord.from_row(r) for r in rows]

    async def unpublished_final(self) -> list[JobRecord]:
        finals = tuple(FINAL_STATES)
        marks = ",".join("?" * len(finals))
        async with self._db.execute(
            f"SELECT * FROM jobs WHERE published = 0 AND status IN ({marks}) ORDER BY id", finals  # noqa: S608
        ) as cur:
            rows = await cur.fetchall()
        return [JobRecord.from_row(r) for r in rows]

    async def children_of(self, parent_id: int) -> list[JobRecord]:
        async with self._db.execute("SELECT * FROM jobs WHERE parent_id = ? ORDER BY id", (parent_id,)) as cur:
            rows = await cur.fetchall()
        return [JobRecord.from_row(r) for r in rows]

    async def count_by_status(self) -> dict[str, int]:
        async with self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status") as cur:
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    async def count_active(self) -> int:
        async with self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", (SUBMITTING, RUNNING)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def next_queued(self, now: float) -> list[JobRecord]:
        """The oldest ready job of each owner with work waiting: the candidates for round-robin."""
        async with self._db.execute(
            """SELECT * FROM jobs WHERE id IN (
                   SELECT MIN(id) FROM jobs WHERE status = ? AND not_before <= ? GROUP BY owner_id
               ) ORDER BY id""",
            (QUEUED, now),
        ) as cur:
            rows = await cur.fetchall()
        return [JobRecord.from_row(r) for r in rows]

    async def late_failures(self, codes: Iterable[int], *, since: float) -> list[JobRecord]:
        """Failed jobs with a useapi jobid and one of `codes`, finished after `since`: their result may come."""
        wanted = tuple(codes)
        async with self._db.execute(
            f"""SELECT * FROM jobs WHERE status = ? AND useapi_jobid IS NOT NULL AND finished_at > ?
                AND error_code IN ({",".join("?" * len(wanted))}) ORDER BY id""",  # noqa: S608
            (FAILED, since, *wanted),
        ) as cur:
            rows = await cur.fetchall()
        return [JobRecord.from_row(r) for r in rows]

    async def earliest_not_before(self) -> float | None:
        async with self._db.execute("SELECT MIN(not_before) FROM jobs WHERE status = ?", (QUEUED,)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def last_served(self) -> dict[int, float]:
        """When each owner last had a job sent to useapi, so round-robin survives a restart."""
        async with self._db.execute(
            "SELECT owner_id, MAX(submitted_at) FROM jobs WHERE submitted_at IS NOT NULL GROUP BY owner_id"
        ) as cur:
            rows = await cur.fetchall()
        return {int(r[0]): float(r[1]) for r in rows}

    async def queue_order(self, last_served: Mapping[int, float] | None = None) -> list[JobBrief]:
        """Every queued job, in the order the scheduler's round-robin will send them (see `round_robin`)."""
        served = await self.last_served() if last_served is None else last_served
        # Only the columns the order and the place edits need: this runs on every scheduler pass, and
        # full rows (JSON decoded) of a long queue cost more than the whole pass should.
        async with self._db.execute(
            "SELECT id, owner_id, channel_id, message_id, error FROM jobs WHERE status = ? ORDER BY id", (QUEUED,)
        ) as cur:
            rows = await cur.fetchall()
        return round_robin([JobBrief(*row) for row in rows], served)

    async def queue_position(self, job: JobRecord) -> int:
        """1-based place of a queued job in the round-robin order (a job no longer queued is at 1)."""
        order = await self.queue_order()
        return next((place for place, queued in enumerate(order, start=1) if queued.id == job.id), 1)

    # -- jobs: transitions ---------------------------------------------------------------------------

    async def _update(self, job_id: int, expect: Iterable[str] | None, **fields: Any) -> JobRecord | None:
        """Set `fields` on the job if it is in one of `expect` states; return the new row, or None."""
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values: list[Any] = [_encode(name, value) for name, value in fields.items()]
        sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 - column names are ours
        values.append(job_id)
        if expect is not None:
            wanted = tuple(expect)
            sql += f" AND status IN ({','.join('?' * len(wanted))})"
            values.extend(wanted)
        async with self._db.execute(sql + " RETURNING *", values) as cur:
            row = await cur.fetchone()
        return JobRecord.from_row(row) if row else None

    async def set_message(self, job_id: int, message_id: int | None) -> JobRecord | None:
        return await self._update(job_id, None, message_id=message_id)

    async def mark_submitting(self, job_id: int) -> JobRecord | None:
        async with self._db.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        attempts = (int(row[0]) if row else 0) + 1
        return await self._update(job_id, (QUEUED,), status=SUBMITTING, attempts=attempts, submitted_at=time.time())

    async def requeue(self, job_id: int, not_before: float, *, error: str | None = None,
                      reset_attempts: bool = False) -> JobRecord | None:
        fields: dict[str, Any] = {"status": QUEUED, "not_before": not_before, "error": error}
        if reset_attempts:
            fields["attempts"] = 0
        return await self._update(job_id, (SUBMITTING, QUEUED), **fields)

    async def mark_running(self, job_id: int, useapi_jobid: str, job_json: dict[str, Any]) -> JobRecord | None:
        now = time.time()
        return await self._update(
            job_id, (SUBMITTING, QUEUED), status=RUNNING, useapi_jobid=useapi_jobid, job_json=job_json,
            error=None, error_code=None, last_event_at=now,
        )

    async def record_progress(self, job_id: int, progress: int | None, job_json: dict[str, Any]) -> JobRecord | None:
        """Apply a non-final update; progress only moves forward, and never on a final job."""
        now = time.time()
        async with self._db.execute(
            """UPDATE jobs SET progress = MAX(COALESCE(progress, 0), COALESCE(?, 0)), job_json = ?,
                              last_event_at = ?, updated_at = ?
               WHERE id = ? AND status = ? RETURNING *""",
            (progress, json.dumps(job_json), now, now, job_id, RUNNING),
        ) as cur:
            row = await cur.fetchone()
        return JobRecord.from_row(row) if row else None

    async def note_progress(self, job_id: int, jobid: str, progress: int | None) -> tuple[JobBrief, int] | None:
        """Record a callback's progress for a job running under `jobid` (it only moves forward), in one
        statement; return the job and the figure now stored, or None when it is not running under `jobid`."""
        now = time.time()
        async with self._db.execute(
            """UPDATE jobs SET progress = MAX(COALESCE(progress, 0), COALESCE(?, 0)), last_event_at = ?,
                              updated_at = ?
               WHERE id = ? AND useapi_jobid = ? AND status = ?
               RETURNING id, owner_id, channel_id, message_id, error, progress""",
            (progress, now, now, job_id, jobid, RUNNING),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return JobBrief(int(row[0]), int(row[1]), int(row[2]), row[3], row[4], RUNNING), int(row[5])

    async def touch(self, job_id: int) -> None:
        """Note that useapi told us about the job now, so polling leaves it alone for a while."""
        await self._db.execute("UPDATE jobs SET last_event_at = ? WHERE id = ?", (time.time(), job_id))

    async def finish(
        self,
        job_id: int,
        status: str,
        *,
        expect: Iterable[str],
        useapi_jobid: str | None = None,
        buttons: Sequence[str] | None = None,
        job_json: dict[str, Any] | None = None,
        error: str | None = None,
        error_code: int | None = None,
        duplicate_of: int | None = None,
    ) -> JobRecord | None:
        """Move a job into a final state (unpublished); None if it was not in an `expect` state."""
        fields: dict[str, Any] = {
            "status": status, "published": 0, "error": error, "error_code": error_code,
            "finished_at": time.time(), "last_event_at": time.time(),
        }
        if useapi_jobid is not None:
            fields["useapi_jobid"] = useapi_jobid
        if buttons is not None:
            fields["buttons"] = list(buttons)
        if job_json is not None:
            fields["job_json"] = job_json
        if duplicate_of is not None:
            fields["duplicate_of"] = duplicate_of
        if status == COMPLETED:
            fields["progress"] = 100
        return await self._update(job_id, expect, **fields)

    async def mark_published(self, job_id: int, status: str, message_id: int | None,
                             image_url: str | None, extra_message_ids: Sequence[int] = ()) -> JobRecord | None:
        """Record that the final state `status` is on screen, with the message that shows it."""
        return await self._update(
            job_id, (status,), published=1, message_id=message_id, image_url=image_url,
            extra_message_ids=list(extra_message_ids),
        )

    # -- per-server and per-user settings -----------------------------------------------------------

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        async with self._db.execute("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)) as cur:
            row = await cur.fetchone()
        return GuildSettings(**dict(row)) if row else GuildSettings(guild_id=guild_id)

    async def update_guild_settings(self, guild_id: int, **fields: Any) -> GuildSettings:
        """Set some columns of a server's settings (None clears one), creating the row as needed."""
        await self._db.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            await self._db.execute(
                f"UPDATE guild_settings SET {assignments} WHERE guild_id = ?",  # noqa: S608 - our column names
                (*fields.values(), guild_id),
            )
        return await self.guild_settings(guild_id)

    async def member_limits(self, guild_id: int, user_id: int) -> MemberLimits:
        async with self._db.execute(
            "SELECT * FROM member_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        ) as cur:
            row = await cur.fetchone()
        return MemberLimits(**dict(row)) if row else MemberLimits(guild_id=guild_id, user_id=user_id)

    async def update_member_limits(self, guild_id: int, user_id: int, **fields: Any) -> MemberLimits:
        await self._db.execute(
            "INSERT OR IGNORE INTO member_limits (guild_id, user_id) VALUES (?, ?)", (guild_id, user_id)
        )
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            await self._db.execute(
                f"UPDATE member_limits SET {assignments} WHERE guild_id = ? AND user_id = ?",  # noqa: S608
                (*fields.values(), guild_id, user_id),
            )
        return await self.member_limits(guild_id, user_id)

    async def remix_enabled(self, user_id: int) -> bool:
        async with self._db.execute("SELECT remix FROM user_settings WHERE user_id = ?", (user_id,)) as cur:
            row = await cur.fetchone()
        return bool(row[0]) if row else False

    async def set_remix(self, user_id: int, enabled: bool) -> None:
        await self._db.execute(
            "INSERT INTO user_settings (user_id, remix) VALUES (?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET remix = excluded.remix",
            (user_id, int(enabled)),
        )

    async def count_waiting_or_running(self, guild_id: int, owner_id: int) -> int:
        """Jobs of one member in one server that are queued, being sent or running."""
        async with self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND owner_id = ? AND status IN (?, ?, ?)",
            (guild_id, owner_id, QUEUED, SUBMITTING, RUNNING),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def count_sent_since(self, guild_id: int, owner_id: int, since: float) -> int:
        """Jobs of one member filed since `since`, less those useapi refused before they ran."""
        async with self._db.execute(
            f"""SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND owner_id = ? AND created_at >= ?
                AND NOT (useapi_jobid IS NULL AND status IN ({",".join("?" * len(FINAL_STATES))}))""",  # noqa: S608
            (guild_id, owner_id, since, *sorted(FINAL_STATES)),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- listing -------------------------------------------------------------------------------------

    async def list_jobs(self, guild_id: int, owner_id: int | None, *, status: str | None = None,
                        before_id: int | None = None, after_id: int | None = None,
                        limit: int = 10) -> list[JobRecord]:
        """Newest first; `before_id` pages to older jobs, `after_id` to the page of newer ones next to it."""
        clauses = ["guild_id = ?"]
        values: list[Any] = [guild_id]
        if owner_id is not None:
            clauses.append("owner_id = ?")
            values.append(owner_id)
        if status is not None:
            clauses.append("status = ?")
            values.append(status)
        if before_id is not None:
            clauses.append("id < ?")
            values.append(before_id)
        if after_id is not None:
            clauses.append("id > ?")
            values.append(after_id)
        values.append(limit)
        # Newer jobs are the ones nearest `after_id`: take them oldest first, then show them newest first.
        direction = "ASC" if after_id is not None else "DESC"
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id {direction} LIMIT ?"  # noqa: S608
        async with self._db.execute(sql, values) as cur:
            rows = await cur.fetchall()
        jobs = [JobRecord.from_row(r) for r in rows]
        return sorted(jobs, key=lambda j: j.id, reverse=True)

    async def last_error_at(self, codes: Iterable[int]) -> dict[int, float]:
        """When a job last failed with each of `codes` (e.g. useapi's 401 and 402), for `/relay status`."""
        wanted = tuple(codes)
        marks = ",".join("?" * len(wanted))
        async with self._db.execute(
            f"SELECT error_code, MAX(finished_at) FROM jobs WHERE error_code IN ({marks}) GROUP BY error_code",  # noqa: S608
            wanted,
        ) as cur:
            rows = await cur.fetchall()
        return {int(r[0]): float(r[1]) for r in rows if r[1] is not None}

    async def last_accepted_at(self) -> float | None:
        """When useapi last accepted a job of ours: proof the account worked at that moment."""
        async with self._db.execute("SELECT MAX(submitted_at) FROM jobs WHERE useapi_jobid IS NOT NULL") as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None


class _Owned(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def owner_id(self) -> int: ...


OwnedT = TypeVar("OwnedT", bound=_Owned)


def round_robin(queued: Sequence[OwnedT], last_served: Mapping[int, float]) -> list[OwnedT]:
    """`queued` in the order the relay's scheduler sends them, were every job ready now.

    The scheduler (Relay._dispatch_ready) takes each owner's oldest job and sends the one whose owner was
    served longest ago (never served first; ties by job number), then marks that owner served now. This
    replays the same rule, so the place a waiting message shows is the place it really has.
    """
    waiting: dict[int, deque[OwnedT]] = {}
    for job in sorted(queued, key=lambda j: j.id):
        waiting.setdefault(job.owner_id, deque()).append(job)
    served = dict(last_served)
    clock = max(served.values(), default=0.0)
    order: list[OwnedT] = []
    while waiting:
        owner = min(waiting, key=lambda o: (served.get(o, 0.0), waiting[o][0].id))
        jobs = waiting[owner]
        order.append(jobs.popleft())
        if not jobs:
            del waiting[owner]
        clock += 1.0
        served[owner] = clock
    return order


def _encode(name: str, value: Any) -> Any:
    if name in {"buttons", "extra_message_ids"}:
        return json.dumps(list(value), ensure_ascii=False)
    if name == "job_json":
        return None if value is None else json.dumps(value, ensure_ascii=False)
    return value


def _split_sql(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
