"""Jobs in SQLite: creation, lookups, and every state change as one statement guarded by the state it expects.

A repeated or stale update (a duplicate callback, a poll racing a callback, a restart in the middle) matches
no row and changes nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import aiosqlite

from bot.jobs import (
    ACTIVE_STATES,
    COMPLETED,
    FINAL_STATES,
    FRUITLESS_STATES,
    QUEUED,
    RUNNING,
    SUBMITTING,
    UNFINISHED_STATES,
    Button,
    ErrorKind,
    JobBrief,
    JobRecord,
    Media,
)
from bot.store.accessors import JobTransitions
from bot.store.base import OneShotTaken
from bot.store.records import BRIEF_COLUMNS, BRIEF_WIDTH, decode_brief, decode_job, encode
from bot.store.sqlite.fetch import fetch_all, fetch_one

# Owners asked about in one statement, well under SQLite's limit on bound parameters.
OWNERS_PER_STATEMENT = 500


def _marks(values: Collection[Any]) -> str:
    return ",".join("?" * len(values))


class SqliteJobs(JobTransitions):
    """The `jobs` table of one database."""

    def __init__(self, db: aiosqlite.Connection, identity: str) -> None:
        self._db = db
        self._identity = identity

    def _job(self, row: Any) -> JobRecord:
        return decode_job(row, self._identity)

    async def _one(self, sql: str, values: Sequence[Any] = ()) -> JobRecord | None:
        row = await fetch_one(self._db, sql, values)
        return self._job(row) if row else None

    async def _many(self, sql: str, values: Sequence[Any] = ()) -> list[JobRecord]:
        rows = await fetch_all(self._db, sql, values)
        return [self._job(r) for r in rows]

    async def _scalar(self, sql: str, values: Sequence[Any] = ()) -> Any:
        row = await fetch_one(self._db, sql, values)
        return row[0] if row else None

    # -- creation and lookup -------------------------------------------------------------------------

    async def create(self, *, guild_id: int, channel_id: int, owner_id: int, prompt: str, backend: str,
                     parent_id: int | None = None, button: Button | None = None, button_prompt: str | None = None,
                     one_shot: bool = False, simulated: bool = False, action: str = "imagine",
                     dimensions: str | None = None, not_before: float = 0.0,
                     holder: tuple[int, float] | None = None) -> JobRecord:
        """File a new job, queued, held from the start by `holder` (a process's key, its lease's end) when given.
        A one-shot button already live on `parent_id` raises `OneShotTaken`."""
        # Unheld, its lease is the column's default (0: run out), so another process takes over one whose filer
        # died before holding it.
        claimed_by, lease_until = holder if holder is not None else (None, 0.0)
        now = time.time()
        try:
            row = await fetch_one(
                self._db,
                """INSERT INTO jobs (guild_id, channel_id, owner_id, parent_id, button, button_ref, one_shot, prompt,
                                     button_prompt, backend, status, simulated, created_at, updated_at, action,
                                     dimensions, not_before, claimed_by, lease_until)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *""",
                (guild_id, channel_id, owner_id, parent_id, button.name if button else None,
                 button.ref if button else None, int(one_shot), prompt, button_prompt, backend, QUEUED,
                 int(simulated), now, now, action, dimensions, not_before, claimed_by, lease_until))
        except sqlite3.IntegrityError as exc:
            if one_shot and "jobs.parent_id, jobs.button" in str(exc):
                assert parent_id is not None and button is not None
                raise OneShotTaken(await self.live_one_shot(parent_id, button.name)) from None
            raise
        assert row is not None
        return self._job(row)

    async def live_one_shot(self, parent_id: int, button: str) -> JobRecord | None:
        """The job a one-shot button of `parent_id` is waiting for, running as, or made."""
        fruitless = tuple(sorted(FRUITLESS_STATES))
        return await self._one(
            f"SELECT * FROM jobs WHERE parent_id = ? AND button = ? AND one_shot = 1 "  # noqa: S608
            f"AND status NOT IN ({_marks(fruitless)})", (parent_id, button, *fruitless))

    async def get(self, job_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    async def by_backend_id(self, backend: str, backend_job_id: str) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE backend = ? AND backend_job_id = ?", (backend, backend_job_id))

    async def by_message(self, message_id: int) -> JobRecord | None:
        """The job whose card is this message."""
        return await self._one("SELECT * FROM jobs WHERE message_id = ?", (message_id,))

    async def import_completed(self, *, guild_id: int, channel_id: int, owner_id: int, backend: str,
                               backend_job_id: str, prompt: str, buttons: Sequence[Button], media: Sequence[Media],
                               done_buttons: Sequence[str], job_json: dict[str, Any], created_at: float | None = None,
                               simulated: bool = False) -> JobRecord:
        """Record a completed job made outside this bot (an id pasted into /button) so its buttons work.

        Inserted already completed and published, in one statement, so the scheduler never sees it queued
        and nothing is posted for it; a job already known by that id is returned as it is.
        """
        now = time.time()
        made = created_at if created_at is not None else now
        await self._db.execute(
            """INSERT OR IGNORE INTO jobs (guild_id, channel_id, owner_id, prompt, backend, backend_job_id, status,
                                           progress, buttons, media, done_buttons, job_json, published, simulated,
                                           created_at, updated_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 100, ?, ?, ?, ?, 1, ?, ?, ?, ?)""",
            (guild_id, channel_id, owner_id, prompt, backend, backend_job_id, COMPLETED, encode("buttons", buttons),
             encode("media", media), encode("done_buttons", done_buttons), encode("job_json", job_json),
             int(simulated), made, now, made),
        )
        job = await self.by_backend_id(backend, backend_job_id)
        assert job is not None
        return job

    async def in_states(self, states: Iterable[str], *, backend: str | None = None,
                        claimed_by: int | None = None) -> list[JobRecord]:
        """Jobs in `states` (of one backend, held by one process, when given), oldest first."""
        wanted = tuple(states)
        sql = f"SELECT * FROM jobs WHERE status IN ({_marks(wanted)})"  # noqa: S608
        values: list[Any] = list(wanted)
        for clause, value in ((" AND backend = ?", backend), (" AND claimed_by = ?", claimed_by)):
            if value is not None:
                sql += clause
                values.append(value)
        return await self._many(sql + " ORDER BY id", values)

    async def unfinished_elsewhere(self, backend: str) -> list[JobRecord]:
        """Queued and running jobs of a backend other than `backend` (one no longer configured)."""
        states = tuple(UNFINISHED_STATES)
        return await self._many(
            f"SELECT * FROM jobs WHERE status IN ({_marks(states)}) AND backend != ? ORDER BY id",  # noqa: S608
            (*states, backend))

    async def unpublished_final(self, claimed_by: int | None = None) -> list[JobRecord]:
        finals = tuple(FINAL_STATES)
        mine = "" if claimed_by is None else f" AND claimed_by = {int(claimed_by)}"
        return await self._many(
            f"SELECT * FROM jobs WHERE published = 0 AND status IN ({_marks(finals)}){mine} ORDER BY id", finals)  # noqa: S608

    async def children_of(self, parent_id: int) -> list[JobRecord]:
        return await self._many("SELECT * FROM jobs WHERE parent_id = ? ORDER BY id", (parent_id,))

    async def count_by_status(self) -> dict[str, int]:
        rows = await fetch_all(self._db, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def count_active(self) -> int:
        active = tuple(ACTIVE_STATES)
        return int(await self._scalar(f"SELECT COUNT(*) FROM jobs WHERE status IN ({_marks(active)})", active) or 0)  # noqa: S608

    async def next_queued(self, now: float) -> list[JobRecord]:
        """The oldest ready job of each owner with work waiting: the candidates for the fair share."""
        return await self._many(
            """SELECT * FROM jobs WHERE id IN (
                   SELECT MIN(id) FROM jobs WHERE status = ? AND not_before <= ? GROUP BY owner_id
               ) ORDER BY id""", (QUEUED, now))

    async def late_failures(self, backend: str, kinds: Iterable[ErrorKind], *, since: float,
                            claimed_by: int | None = None) -> list[JobRecord]:
        """Failed jobs of `backend` with a job id there and one of `kinds`, finished after `since`: their result
        may still come."""
        wanted = tuple(str(kind) for kind in kinds)
        mine = "" if claimed_by is None else f" AND claimed_by = {int(claimed_by)}"
        return await self._many(
            f"""SELECT * FROM jobs WHERE status = 'failed' AND backend = ? AND backend_job_id IS NOT NULL
                AND finished_at > ? AND error_kind IN ({_marks(wanted)}){mine} ORDER BY id""",  # noqa: S608
            (backend, since, *wanted))

    async def earliest_not_before(self) -> float | None:
        value = await self._scalar("SELECT MIN(not_before) FROM jobs WHERE status = ?", (QUEUED,))
        return float(value) if value is not None else None

    async def last_served(self) -> dict[int, float]:
        """When each owner last had a job sent, so the fair share survives a restart."""
        rows = await fetch_all(
            self._db, "SELECT owner_id, MAX(submitted_at) FROM jobs WHERE submitted_at IS NOT NULL GROUP BY owner_id")
        return {int(r[0]): float(r[1]) for r in rows}

    async def last_served_of(self, owners: Iterable[int]) -> dict[int, float]:
        """When each of `owners` last had a job sent (never: absent); one index probe each, whatever the history,
        all in one statement: the display asks at every scheduler pass, for every member waiting."""
        wanted = sorted(set(owners))
        served: dict[int, float] = {}
        for start in range(0, len(wanted), OWNERS_PER_STATEMENT):
            chunk = wanted[start:start + OWNERS_PER_STATEMENT]
            values = ", ".join("(?)" for _ in chunk)
            rows = await fetch_all(
                self._db, f"WITH owners(id) AS (VALUES {values}) "  # noqa: S608 - placeholders only
                "SELECT id, (SELECT MAX(submitted_at) FROM jobs WHERE owner_id = owners.id) FROM owners", chunk)
            served.update({int(row[0]): float(row[1]) for row in rows if row[1] is not None})
        return served

    async def queued_briefs(self) -> list[JobBrief]:
        """Every queued job, oldest first, with only the columns the queue order and place edits need."""
        rows = await fetch_all(
            self._db, f"SELECT {BRIEF_COLUMNS} FROM jobs WHERE status = ? ORDER BY id", (QUEUED,))  # noqa: S608
        return [decode_brief(row) for row in rows]

    # -- transitions ---------------------------------------------------------------------------------

    async def _update(self, job_id: int, expect: Iterable[str] | None, **fields: Any) -> JobRecord | None:
        """Set `fields` on the job if it is in one of `expect` states; return the new row, or None."""
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values: list[Any] = [encode(name, value) for name, value in fields.items()]
        sql = f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 - column names are ours
        values.append(job_id)
        if expect is not None:
            wanted = tuple(expect)
            sql += f" AND status IN ({_marks(wanted)})"
            values.extend(wanted)
        return await self._one(sql + " RETURNING *", values)

    async def mark_submitting(self, job_id: int) -> JobRecord | None:
        return await self._one(
            "UPDATE jobs SET status = ?, attempts = attempts + 1, submitted_at = ?, updated_at = ? "
            "WHERE id = ? AND status = ? RETURNING *", (SUBMITTING, time.time(), time.time(), job_id, QUEUED))

    async def record_progress(self, job_id: int, progress: int | None, preview_url: str | None,
                              job_json: dict[str, Any] | None) -> JobRecord | None:
        """Apply a non-final update; progress only moves forward, and never on a final job."""
        now = time.time()
        return await self._one(
            """UPDATE jobs SET progress = MAX(COALESCE(progress, 0), COALESCE(?, 0)),
                              preview_url = COALESCE(?, preview_url), job_json = COALESCE(?, job_json),
                              last_event_at = ?, updated_at = ?
               WHERE id = ? AND status = ? RETURNING *""",
            (progress, preview_url, encode("job_json", job_json), now, now, job_id, RUNNING))

    async def note_progress(self, job_id: int, backend_job_id: str, progress: int | None,
                            stored_ref: str | None) -> tuple[JobBrief, int, str | None] | None:
        """A callback's progress for a job running as `backend_job_id` (only forward), in one statement; the
        job, the figure now stored and its preview, or None when it is not running as that job under that
        reference (`stored_ref` as the row holds it: None for this database's own kind)."""
        now = time.time()
        row = await fetch_one(
            self._db,
            f"""UPDATE jobs SET progress = MAX(COALESCE(progress, 0), COALESCE(?, 0)), last_event_at = ?,
                               updated_at = ?
                WHERE id = ? AND backend_job_id = ? AND status = ? AND ref IS ?
                RETURNING {BRIEF_COLUMNS}, progress, preview_url""",  # noqa: S608
            (progress, now, now, job_id, backend_job_id, RUNNING, stored_ref))
        if row is None:
            return None
        return decode_brief(tuple(row)[:BRIEF_WIDTH]), int(row[BRIEF_WIDTH]), row[BRIEF_WIDTH + 1]

    async def touch(self, job_id: int) -> None:
        """Note that the backend told us about the job now, so polling leaves it alone for a while."""
        await self._db.execute("UPDATE jobs SET last_event_at = ? WHERE id = ?", (time.time(), job_id))

    async def finish(self, job_id: int, status: str, *, expect: Iterable[str], backend_job_id: str | None = None,
                     buttons: Sequence[Button] | None = None, media: Sequence[Media] | None = None,
                     done_buttons: Sequence[str] | None = None, job_json: dict[str, Any] | None = None,
                     error: str | None = None, error_kind: ErrorKind | None = None,
                     duplicate_of: int | None = None, prompts: Sequence[str] | None = None) -> JobRecord | None:
        """Move a job into a final state (unpublished); None if it was not in an `expect` state."""
        now = time.time()
        fields: dict[str, Any] = {"status": status, "published": 0, "error": error, "error_kind": error_kind,
                                  "finished_at": now, "last_event_at": now, "preview_url": None}
        optional = {"backend_job_id": backend_job_id, "buttons": buttons, "media": media,
                    "done_buttons": done_buttons, "job_json": job_json, "duplicate_of": duplicate_of,
                    "prompts": prompts}
        fields.update({name: value for name, value in optional.items() if value is not None})
        if status == COMPLETED:
            fields["progress"] = 100
        return await self._update(job_id, expect, **fields)

    async def mark_published(self, job_id: int, status: str, message_id: int | None, image_url: str | None,
                             extra_message_ids: Sequence[int] = (), *, undelivered: str | None = None,
                             ) -> JobRecord | None:
        """Record that the final state `status` is on screen, with the message that shows it (or, `undelivered`,
        why it could not be shown anywhere: no more tries are made)."""
        return await self._update(job_id, (status,), published=1, message_id=message_id, image_url=image_url,
                                  extra_message_ids=list(extra_message_ids), undelivered=undelivered)

    async def note_publish_refused(self, job_id: int) -> int:
        """Count one more time Discord refused the job's result; the count so far."""
        return int(await self._scalar(
            "UPDATE jobs SET publish_failures = publish_failures + 1 WHERE id = ? RETURNING publish_failures",
            (job_id,)) or 0)

    async def set_gallery_copy(self, job_id: int, message_id: int) -> None:
        await self._db.execute("UPDATE jobs SET gallery_message_id = ? WHERE id = ?", (message_id, job_id))

    # -- per member ----------------------------------------------------------------------------------

    async def count_waiting_or_running(self, guild_id: int, owner_id: int) -> int:
        """Jobs of one member in one server that are queued, being sent or running."""
        states = tuple(UNFINISHED_STATES)
        return int(await self._scalar(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND owner_id = ? AND status IN ({_marks(states)})",  # noqa: S608
            (guild_id, owner_id, *states)) or 0)

    async def count_sent_since(self, guild_id: int, owner_id: int, since: float) -> int:
        """Jobs of one member filed since `since`, less those the backend refused before they ran."""
        finals = tuple(sorted(FINAL_STATES))
        return int(await self._scalar(
            f"""SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND owner_id = ? AND created_at >= ?
                AND NOT (backend_job_id IS NULL AND status IN ({_marks(finals)}))""",  # noqa: S608
            (guild_id, owner_id, since, *finals)) or 0)

    async def list_jobs(self, guild_id: int, owner_id: int | None, *, status: str | None = None,
                        before_id: int | None = None, after_id: int | None = None,
                        limit: int = 10) -> list[JobRecord]:
        """Newest first; `before_id` pages to older jobs, `after_id` to the page of newer ones next to it."""
        clauses = ["guild_id = ?"]
        values: list[Any] = [guild_id]
        for clause, value in (("owner_id = ?", owner_id), ("status = ?", status), ("id < ?", before_id),
                              ("id > ?", after_id)):
            if value is not None:
                clauses.append(clause)
                values.append(value)
        values.append(limit)
        # Newer jobs are the ones nearest `after_id`: take them oldest first, then show them newest first.
        direction = "ASC" if after_id is not None else "DESC"
        jobs = await self._many(
            f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id {direction} LIMIT ?", values)  # noqa: S608
        return sorted(jobs, key=lambda j: j.id, reverse=True)

    async def last_error_at(self, kinds: Iterable[ErrorKind]) -> dict[ErrorKind, float]:
        """When a job last failed with each of `kinds`, for `/relay status`."""
        wanted = tuple(str(kind) for kind in kinds)
        rows = await fetch_all(
            self._db, f"SELECT error_kind, MAX(finished_at) FROM jobs WHERE error_kind IN ({_marks(wanted)}) "  # noqa: S608
            "GROUP BY error_kind", wanted)
        return {ErrorKind(r[0]): float(r[1]) for r in rows if r[1] is not None}

    async def last_accepted_at(self) -> float | None:
        """When the backend last accepted a job of ours: proof the account worked at that moment."""
        value = await self._scalar("SELECT MAX(submitted_at) FROM jobs WHERE backend_job_id IS NOT NULL")
        return float(value) if value is not None else None

    async def count_all(self) -> int:
        return int(await self._scalar("SELECT COUNT(*) FROM jobs") or 0)
