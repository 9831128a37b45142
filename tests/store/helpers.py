"""Jobs brought to a given state through the store's own accessors, for the store tests."""

from __future__ import annotations

from typing import Any

from bot.jobs import COMPLETED, FAILED, RUNNING, SUBMITTING, Button, ErrorKind, JobRecord, Media
from bot.store import Store

# Discord snowflakes: 19 digits, past 2**53 (a float or a JavaScript number would round them).
GUILD = 1_100_000_000_000_000_100
CHANNEL = 1_100_000_000_000_000_200
ALICE = 1_100_000_000_000_000_301
BOB = 1_100_000_000_000_000_302
BACKEND = "mjproxy"
GRID_BUTTONS = (Button("U1", "MJ::JOB::upsample::1::abc"), Button("U2", "MJ::JOB::upsample::2::abc"),
                Button("🔄", "MJ::JOB::reroll::0::abc::SOLO"), Button("V1", "MJ::JOB::variation::1::abc"))
GRID_MEDIA = (Media("https://cdn.example/grid.png", "image/png", 1234, 1024, 1024, "grid.png"),)


async def new_job(store: Store, *, owner: int = ALICE, guild: int = GUILD, prompt: str = "a red fox",
                  backend: str = BACKEND, **extra: Any) -> JobRecord:
    return await store.jobs.create(guild_id=guild, channel_id=CHANNEL, owner_id=owner, prompt=prompt,
                                   backend=backend, **extra)


async def running(store: Store, backend_job_id: str | None = None, **create: Any) -> JobRecord:
    """A job sent and accepted by the backend as `backend_job_id` (default: task-<id>)."""
    job = await new_job(store, **create)
    assert await store.jobs.mark_submitting(job.id) is not None
    moved = await store.jobs.mark_running(job.id, backend_job_id or f"task-{job.id}", {"id": f"task-{job.id}"})
    assert moved is not None and moved.status == RUNNING
    return moved


async def completed(store: Store, **create: Any) -> JobRecord:
    """A finished grid, on screen (published), with buttons and media."""
    job = await running(store, **create)
    done = await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,), buttons=GRID_BUTTONS, media=GRID_MEDIA,
                                   job_json={"id": job.backend_job_id, "status": "SUCCESS"})
    assert done is not None
    shown = await store.jobs.mark_published(done.id, COMPLETED, 900_000_000_000_000_000 + done.id, None)
    assert shown is not None
    return shown


async def failed(store: Store, kind: ErrorKind = ErrorKind.JOB_FAILED, *, sent: bool = True,
                 **create: Any) -> JobRecord:
    """A failed job: one the backend accepted first (`sent`), or one refused while it was being sent."""
    if sent:
        job = await running(store, **create)
        expect: tuple[str, ...] = (RUNNING,)
    else:
        job = await new_job(store, **create)
        assert await store.jobs.mark_submitting(job.id) is not None
        expect = (SUBMITTING,)
    done = await store.jobs.finish(job.id, FAILED, expect=expect, error="it failed", error_kind=kind)
    assert done is not None
    return done
