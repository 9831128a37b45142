"""Jobs in PostgreSQL: the same statements as `bot.store.sqlite.jobs`, in PostgreSQL's dialect.

Every state change is one statement guarded by the state it expects, so a repeated or stale update (from
this process or another one) matches no row and changes nothing; the one-shot index is the database's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import asyncpg

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
from bot.store.postgres.connect import Connection, Pool
from bot.store.records import BRIEF_COLUMNS, BRIEF_WIDTH, decode_brief, decode_job, encode

# The flags are BOOLEAN here; `encode` writes SQLite's 0 and 1, which asyncpg refuses for a boolean.
BOOLEAN_COLUMNS: Final = frozenset({"published", "simulated", "one_shot"})


def param(name: str, value: Any) -> Any:
    """A field's value as its PostgreSQL column takes it."""
    if name in BOOLEAN_COLUMNS:
        return bool(value)
    return encode(name, value)


class PostgresJobs(JobTransitions):
    """The `jobs` table of one database, through a pool shared with the store's other parts."""

    def __init__(self, pool: Pool, identity: str) -> None:
        self._pool = pool
        self.identity = identity

    def decode(self, row: asyncpg.Record) -> JobRecord:
        return decode_job(row, self.identity)

    _job = decode

    async def _one(self, sql: str, *values: Any) -> JobRecord | None:
        row = await self._pool.fetchrow(sql, *values)
        return self._job(row) if row else None

    async def _many(self, sql: str, *values: Any) -> list[JobRecord]:
        return [self._job(row) for row in await self._pool.fetch(sql, *values)]

    async def _count(self, sql: str, *values: Any) -> int:
        return int(await self._pool.fetchval(sql, *values) or 0)

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
            row = await self._pool.fetchrow(
                """INSERT INTO jobs (guild_id, channel_id, owner_id, parent_id, button, button_ref, one_shot, prompt,
                                     button_prompt, backend, status, simulated, created_at, updated_at, action,
                                     dimensions, not_before, claimed_by, lease_until)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                   RETURNING *""",
                guild_id, channel_id, owner_id, parent_id, button.name if button else None,
                button.ref if button else None, one_shot, prompt, button_prompt, backend, QUEUED, simulated, now, now,
                action, dimensions, not_before, claimed_by, lease_until)
        except asyncpg.UniqueViolationError as exc:
            if one_shot and exc.constraint_name == "jobs_one_shot":
                assert parent_id is not None and button is not None
                raise OneShotTaken(await self.live_one_shot(parent_id, button.name)) from None
            raise
        assert row is not None
        return self._job(row)

    async def live_one_shot(self, parent_id: int, button: str) -> JobRecord | None:
        """The job a one-shot button of `parent_id` is waiting for, running as, or made."""
        return await self._one(
            "SELECT * FROM jobs WHERE parent_id = $1 AND button = $2 AND one_shot AND NOT status = ANY($3::text[])",
            parent_id, button, sorted(FRUITLESS_STATES))

    async def get(self, job_id: int) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE id = $1", job_id)

    async def by_backend_id(self, backend: str, backend_job_id: str) -> JobRecord | None:
        return await self._one("SELECT * FROM jobs WHERE backend = $1 AND backend_job_id = $2", backend, backend_job_id)

    async def by_message(self, message_id: int) -> JobRecord | None:
        """The job whose card is this message."""
        return await self._one("SELECT * FROM jobs WHERE message_id = $1", message_id)

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
        await self._pool.execute(
            """INSERT INTO jobs (guild_id, channel_id, owner_id, prompt, backend, backend_job_id, status, progress,
                                 buttons, media, done_buttons, job_json, published, simulated, created_at, updated_at,
                                 finished_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 100, $8, $9, $10, $11, TRUE, $12, $13, $14, $15)
               ON CONFLICT DO NOTHING""",
            guild_id, channel_id, owner_id, prompt, backend, backend_job_id, COMPLETED, encode("buttons", buttons),
            encode("media", media), encode("done_buttons", done_buttons), encode("job_json", job_json), simulated,
            made, now, made)
        job = await self.by_backend_id(backend, backend_job_id)
        assert job is not None
        return job

    async def in_states(self, states: Iterable[str], *, backend: str | None = None,
                        claimed_by: int | None = None) -> list[JobRecord]:
        """Jobs in `states` (of one backend, held by one process, when given), oldest first."""
        return await self._many(
            "SELECT * FROM jobs WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR backend = $2) "
            "AND ($3::bigint IS NULL OR claimed_by = $3) ORDER BY id", list(states), backend, claimed_by)

    async def unfinished_elsewhere(self, backend: str) -> list[JobRecord]:
        """Queued and running jobs of a backend other than `backend` (one no longer configured)."""
        return await self._many("SELECT * FROM jobs WHERE status = ANY($1::text[]) AND backend <> $2 ORDER BY id",
                                sorted(UNFINISHED_STATES), backend)

    async def unpublished_final(self, claimed_by: int | None = None) -> list[JobRecord]:
        return await self._many(
            "SELECT * FROM jobs WHERE NOT published AND status = ANY($1::text[]) "
            "AND ($2::bigint IS NULL OR claimed_by = $2) ORDER BY id", sorted(FINAL_STATES), claimed_by)

    async def children_of(self, parent_id: int) -> list[JobRecord]:
        return await self._many("SELECT * FROM jobs WHERE parent_id = $1 ORDER BY id", parent_id)

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def count_active(self) -> int:
        return await self._count("SELECT COUNT(*) FROM jobs WHERE status = ANY($1::text[])", sorted(ACTIVE_STATES))

    async def next_queued(self, now: float) -> list[JobRecord]:
        """The oldest ready job of each owner with work waiting: the candidates for the fair share."""
        return await self._many(
            """SELECT * FROM jobs WHERE id IN (
                   SELECT MIN(id) FROM jobs WHERE status = $1 AND not_before <= $2 GROUP BY owner_id
               ) ORDER BY id""", QUEUED, now)

    async def late_failures(self, backend: str, kinds: Iterable[ErrorKind], *, since: float,
                            claimed_by: int | None = None) -> list[JobRecord]:
        """Failed jobs of `backend` with a job id there and one of `kinds`, finished after `since`: their result
        may still come."""
        return await self._many(
            """SELECT * FROM jobs WHERE status = 'failed' AND backend = $1 AND backend_job_id IS NOT NULL
                AND finished_at > $2 AND error_kind = ANY($3::text[]) AND ($4::bigint IS NULL OR claimed_by = $4)
                ORDER BY id""",
            backend, since, [str(kind) for kind in kinds], claimed_by)

    async def earliest_not_before(self) -> float | None:
        value = await self._pool.fetchval("SELECT MIN(not_before) FROM jobs WHERE status = $1", QUEUED)
        return float(value) if value is not None else None

    async def last_served(self) -> dict[int, float]:
        """When each owner last had a job sent, so the fair share survives a restart."""
        rows = await self._pool.fetch(
            "SELECT owner_id, MAX(submitted_at) FROM jobs WHERE submitted_at IS NOT NULL GROUP BY owner_id")
        return {int(r[0]): float(r[1]) for r in rows}

    async def last_served_of(self, owners: Iterable[int], conn: Connection | None = None) -> dict[int, float]:
        """When each of `owners` last had a job sent (never: absent); one index probe each, whatever the history.
        On `conn` when given (inside a claim's transaction)."""
        rows = await (conn or self._pool).fetch(
            "SELECT owner, (SELECT MAX(submitted_at) FROM jobs WHERE owner_id = owner) FROM unnest($1::bigint[]) "
            "AS owner", sorted(set(owners)))
        return {int(r[0]): float(r[1]) for r in rows if r[1] is not None}

    async def queued_briefs(self) -> list[JobBrief]:
        """Every queued job, oldest first, with only the columns the queue order and place edits need."""
        rows = await self._pool.fetch(f"SELECT {BRIEF_COLUMNS} FROM jobs WHERE status = $1 ORDER BY id", QUEUED)  # noqa: S608
        return [decode_brief(row) for row in rows]

    # -- transitions ---------------------------------------------------------------------------------

    async def _update(self, job_id: int, expect: Iterable[str] | None, **fields: Any) -> JobRecord | None:
        """Set `fields` on the job if it is in one of `expect` states; return the new row, or None."""
        fields["updated_at"] = time.time()
        values: list[Any] = [param(name, value) for name, value in fields.items()]
        assignments = ", ".join(f"{name} = ${number}" for number, name in enumerate(fields, start=1))
        values.append(job_id)
        sql = f"UPDATE jobs SET {assignments} WHERE id = ${len(values)}"  # noqa: S608 - column names are ours
        if expect is not None:
            values.append(list(expect))
            sql += f" AND status = ANY(${len(values)}::text[])"
        return await self._one(sql + " RETURNING *", *values)

    async def mark_submitting(self, job_id: int) -> JobRecord | None:
        now = time.time()
        return await self._one(
            "UPDATE jobs SET status = $1, attempts = attempts + 1, submitted_at = $2, updated_at = $2 "
            "WHERE id = $3 AND status = $4 RETURNING *", SUBMITTING, now, job_id, QUEUED)

    async def record_progress(self, job_id: int, progress: int | None, preview_url: str | None,
                              job_json: dict[str, Any] | None) -> JobRecord | None:
        """Apply a non-final update; progress only moves forward, and never on a final job."""
        now = time.time()
        return await self._one(
            """UPDATE jobs SET progress = GREATEST(COALESCE(progress, 0), COALESCE($1::integer, 0)),
                              preview_url = COALESCE($2::text, preview_url), job_json = COALESCE($3::json, job_json),
                              last_event_at = $4, updated_at = $4
               WHERE id = $5 AND status = $6 RETURNING *""",
            progress, preview_url, encode("job_json", job_json), now, job_id, RUNNING)

    async def note_progress(self, job_id: int, backend_job_id: str, progress: int | None,
                            stored_ref: str | None) -> tuple[JobBrief, int, str | None] | None:
        """A callback's progress for a job running as `backend_job_id` (only forward), in one statement; the
        job, the figure now stored and its preview, or None when it is not running as that job under that
        reference (`stored_ref` as the row holds it: None for this database's own kind)."""
        now = time.time()
        row = await self._pool.fetchrow(
            f"""UPDATE jobs SET progress = GREATEST(COALESCE(progress, 0), COALESCE($1::integer, 0)),
                               last_event_at = $2, updated_at = $2
                WHERE id = $3 AND backend_job_id = $4 AND status = $5 AND ref IS NOT DISTINCT FROM $6::text
                RETURNING {BRIEF_COLUMNS}, progress, preview_url""",  # noqa: S608
            progress, now, job_id, backend_job_id, RUNNING, stored_ref)
        if row is None:
            return None
        return decode_brief(tuple(row)[:BRIEF_WIDTH]), int(row[BRIEF_WIDTH]), row[BRIEF_WIDTH + 1]

    async def touch(self, job_id: int) -> None:
        """Note that the backend told us about the job now, so polling leaves it alone for a while."""
        await self._pool.execute("UPDATE jobs SET last_event_at = $1 WHERE id = $2", time.time(), job_id)

    async def finish(self, job_id: int, status: str, *, expect: Iterable[str], backend_job_id: str | None = None,
                     buttons: Sequence[Button] | None = None, media: Sequence[Media] | None = None,
                     done_buttons: Sequence[str] | None = None, job_json: dict[str, Any] | None = None,
                     error: str | None = None, error_kind: ErrorKind | None = None,
                     duplicate_of: int | None = None, prompts: Sequence[str] | None = None) -> JobRecord | None:
        """Move a job into a final state (unpublished); None if it was not in an `expect` state."""
        now = time.time()
        fields: dict[str, Any] = {"status": status, "published": False, "error": error, "error_kind": error_kind,
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
        return await self._update(job_id, (status,), published=True, message_id=message_id, image_url=image_url,
                                  extra_message_ids=list(extra_message_ids), undelivered=undelivered)

    async def note_publish_refused(self, job_id: int) -> int:
        """Count one more time Discord refused the job's result; the count so far."""
        return await self._count(
            "UPDATE jobs SET publish_failures = publish_failures + 1 WHERE id = $1 RETURNING publish_failures", job_id)

    async def set_gallery_copy(self, job_id: int, message_id: int) -> None:
        await self._pool.execute("UPDATE jobs SET gallery_message_id = $1 WHERE id = $2", message_id, job_id)

    # -- per member ----------------------------------------------------------------------------------

    async def count_waiting_or_running(self, guild_id: int, owner_id: int) -> int:
        """Jobs of one member in one server that are queued, being sent or running."""
        return await self._count(
            "SELECT COUNT(*) FROM jobs WHERE guild_id = $1 AND owner_id = $2 AND status = ANY($3::text[])",
            guild_id, owner_id, sorted(UNFINISHED_STATES))

    async def count_sent_since(self, guild_id: int, owner_id: int, since: float) -> int:
        """Jobs of one member filed since `since`, less those the backend refused before they ran."""
        return await self._count(
            """SELECT COUNT(*) FROM jobs WHERE guild_id = $1 AND owner_id = $2 AND created_at >= $3
                AND NOT (backend_job_id IS NULL AND status = ANY($4::text[]))""",
            guild_id, owner_id, since, sorted(FINAL_STATES))

    async def list_jobs(self, guild_id: int, owner_id: int | None, *, status: str | None = None,
                        before_id: int | None = None, after_id: int | None = None,
                        limit: int = 10) -> list[JobRecord]:
        """Newest first; `before_id` pages to older jobs, `after_id` to the page of newer ones next to it."""
        clauses = ["guild_id = $1"]
        values: list[Any] = [guild_id]
        for clause, value in (("owner_id = $", owner_id), ("status = $", status), ("id < $", before_id),
                              ("id > $", after_id)):
            if value is not None:
                values.append(value)
                clauses.append(f"{clause}{len(values)}")
        values.append(limit)
        # Newer jobs are the ones nearest `after_id`: take them oldest first, then show them newest first.
        direction = "ASC" if after_id is not None else "DESC"
        jobs = await self._many(
            f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id {direction} LIMIT ${len(values)}",  # noqa: S608
            *values)
        return sorted(jobs, key=lambda j: j.id, reverse=True)

    async def last_error_at(self, kinds: Iterable[ErrorKind]) -> dict[ErrorKind, float]:
        """When a job last failed with each of `kinds`, for `/relay status`."""
        rows = await self._pool.fetch(
            "SELECT error_kind, MAX(finished_at) FROM jobs WHERE error_kind = ANY($1::text[]) GROUP BY error_kind",
            [str(kind) for kind in kinds])
        return {ErrorKind(r[0]): float(r[1]) for r in rows if r[1] is not None}

    async def last_accepted_at(self) -> float | None:
        """When the backend last accepted a job of ours: proof the account worked at that moment."""
        value = await self._pool.fetchval("SELECT MAX(submitted_at) FROM jobs WHERE backend_job_id IS NOT NULL")
        return float(value) if value is not None else None

    async def count_all(self) -> int:
        return await self._count("SELECT COUNT(*) FROM jobs")
