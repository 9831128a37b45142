"""What the relay asks of the store: pages of /jobs, quotas, the queue and the fair share, what to follow up
after a restart, imported jobs, and the figures of /relay status."""

from __future__ import annotations

import time

import pytest

from bot.jobs import (
    ACTIVE_STATES,
    COMPLETED,
    FAILED,
    LATE_COMPLETION_KINDS,
    QUEUED,
    RUNNING,
    SUBMITTING,
    UNFINISHED_STATES,
    Button,
    ErrorKind,
    Media,
)
from bot.store import Store
from tests.store.helpers import ALICE, BACKEND, BOB, CHANNEL, GUILD, completed, failed, new_job, running

OTHER_GUILD = GUILD + 1


async def test_list_jobs_pages_older_and_newer(store: Store) -> None:
    mine = [(await new_job(store)).id for _ in range(25)]
    await new_job(store, owner=BOB)
    await new_job(store, guild=OTHER_GUILD)
    newest = mine[::-1]
    first = await store.jobs.list_jobs(GUILD, ALICE)
    assert [j.id for j in first] == newest[:10]
    older = await store.jobs.list_jobs(GUILD, ALICE, before_id=first[-1].id)
    assert [j.id for j in older] == newest[10:20]
    last = await store.jobs.list_jobs(GUILD, ALICE, before_id=older[-1].id)
    assert [j.id for j in last] == newest[20:]
    # Back to newer: the page next to the one shown, still newest first.
    back = await store.jobs.list_jobs(GUILD, ALICE, after_id=last[0].id)
    assert [j.id for j in back] == newest[10:20]
    assert [j.id for j in await store.jobs.list_jobs(GUILD, ALICE, after_id=older[0].id, limit=3)] == newest[7:10]
    assert len(await store.jobs.list_jobs(GUILD, None, limit=100)) == 26
    assert await store.jobs.list_jobs(GUILD + 2, None) == []


async def test_list_jobs_by_status(store: Store) -> None:
    done = await completed(store)
    await running(store)
    await new_job(store)
    assert [j.id for j in await store.jobs.list_jobs(GUILD, ALICE, status=COMPLETED)] == [done.id]
    assert len(await store.jobs.list_jobs(GUILD, ALICE, status=QUEUED)) == 1


async def test_what_counts_against_the_daily_quota(store: Store) -> None:
    start = time.time()
    await new_job(store)
    await running(store)
    await completed(store)
    await failed(store, sent=True)  # the backend ran it: it counts
    await failed(store, ErrorKind.BAD_REQUEST, sent=False)  # refused before it was sent: it does not
    cancelled = await new_job(store)
    await store.jobs.finish(cancelled.id, "cancelled", expect=(QUEUED,), error_kind=ErrorKind.CANCELLED)
    await new_job(store, owner=BOB)
    await new_job(store, guild=OTHER_GUILD)
    assert await store.jobs.count_sent_since(GUILD, ALICE, start) == 4
    assert await store.jobs.count_sent_since(GUILD, BOB, start) == 1
    assert await store.jobs.count_sent_since(GUILD, ALICE, time.time() + 60) == 0


async def test_waiting_or_running_per_member(store: Store) -> None:
    await new_job(store)
    job = await new_job(store)
    await store.jobs.mark_submitting(job.id)
    await running(store)
    await completed(store)
    await new_job(store, owner=BOB)
    assert await store.jobs.count_waiting_or_running(GUILD, ALICE) == 3
    assert await store.jobs.count_waiting_or_running(OTHER_GUILD, ALICE) == 0
    assert await store.jobs.count_active() == 2
    assert await store.jobs.count_by_status() == {QUEUED: 2, SUBMITTING: 1, RUNNING: 1, COMPLETED: 1}
    assert await store.jobs.count_all() == 5
    assert {j.status for j in await store.jobs.in_states(ACTIVE_STATES)} == {SUBMITTING, RUNNING}


async def test_in_states_by_backend(store: Store) -> None:
    ours = await running(store)
    await running(store, backend="useapi")
    assert [j.id for j in await store.jobs.in_states((RUNNING,), backend=BACKEND)] == [ours.id]
    assert len(await store.jobs.in_states((RUNNING,))) == 2
    assert await store.jobs.in_states(()) == []


async def test_late_failures_are_of_this_backend_and_these_kinds(store: Store) -> None:
    since = time.time() - 1
    late = await failed(store, ErrorKind.UNTRACKABLE)
    timed_out = await failed(store, ErrorKind.TIMED_OUT)
    await failed(store, ErrorKind.UNTRACKABLE, backend="useapi")
    await failed(store, ErrorKind.MODERATED)
    await failed(store, ErrorKind.TIMED_OUT, sent=False)  # no job at the backend: nothing can come
    found = await store.jobs.late_failures(BACKEND, LATE_COMPLETION_KINDS, since=since)
    assert [j.id for j in found] == [late.id, timed_out.id]
    assert await store.jobs.late_failures(BACKEND, LATE_COMPLETION_KINDS, since=time.time() + 1) == []
    assert await store.jobs.late_failures(BACKEND, (), since=since) == []


async def test_unfinished_jobs_of_another_backend(store: Store) -> None:
    queued = await new_job(store, backend="useapi")
    run = await running(store, backend="useapi")
    await completed(store, backend="useapi")
    await running(store)
    assert [j.id for j in await store.jobs.unfinished_elsewhere(BACKEND)] == [queued.id, run.id]
    assert all(j.status in UNFINISHED_STATES for j in await store.jobs.unfinished_elsewhere("useapi"))


async def test_lookups_by_message_and_backend_id(store: Store) -> None:
    job = await completed(store)
    assert job.message_id is not None and job.backend_job_id is not None
    assert await store.jobs.by_message(job.message_id) == job
    assert await store.jobs.by_message(1) is None
    assert await store.jobs.by_backend_id(BACKEND, job.backend_job_id) == job
    assert await store.jobs.by_backend_id("useapi", job.backend_job_id) is None
    assert await store.jobs.get(10**12) is None


async def test_queued_briefs_in_order_with_their_columns(store: Store) -> None:
    a = await new_job(store)
    await running(store)
    b = await new_job(store, owner=BOB)
    await store.jobs.set_message(b.id, 1_577_422_705_429_315_584)
    await store.jobs.mark_submitting(b.id)
    await store.jobs.requeue(b.id, 0, error="busy")
    briefs = await store.jobs.queued_briefs()
    assert [(x.id, x.owner_id, x.channel_id, x.message_id, x.error, x.status) for x in briefs] == [
        (a.id, ALICE, CHANNEL, None, None, QUEUED), (b.id, BOB, CHANNEL, 1_577_422_705_429_315_584, "busy", QUEUED)]


async def test_next_queued_is_each_owners_oldest_ready_job(store: Store) -> None:
    now = time.time()
    alice_waits = await new_job(store)
    await store.jobs.mark_submitting(alice_waits.id)
    await store.jobs.requeue(alice_waits.id, now + 60)  # not ready: her next one goes instead
    alice_next = await new_job(store)
    await new_job(store)
    bob_first = await new_job(store, owner=BOB)
    await new_job(store, owner=BOB)
    assert [j.id for j in await store.jobs.next_queued(now)] == [alice_next.id, bob_first.id]
    assert [j.id for j in await store.jobs.next_queued(now + 61)] == [alice_waits.id, bob_first.id]
    assert await store.jobs.earliest_not_before() == 0.0
    for job in await store.jobs.in_states((QUEUED,)):
        if job.id != alice_waits.id:
            await store.jobs.finish(job.id, "cancelled", expect=(QUEUED,))
    assert await store.jobs.earliest_not_before() == now + 60


async def test_nothing_queued(store: Store) -> None:
    assert await store.jobs.next_queued(time.time()) == []
    assert await store.jobs.earliest_not_before() is None
    assert await store.jobs.queued_briefs() == []
    assert await store.jobs.last_served() == {}
    assert await store.jobs.last_accepted_at() is None
    assert await store.jobs.last_error_at(list(ErrorKind)) == {}
    assert (await store.jobs.count_by_status(), await store.jobs.count_active(), await store.jobs.count_all()) == (
        {}, 0, 0)


async def test_last_served_is_each_owners_latest_send(store: Store) -> None:
    first = await running(store)
    second = await running(store)
    bob = await running(store, owner=BOB)
    await new_job(store, owner=BOB + 1)  # never sent
    served = await store.jobs.last_served()
    assert served == {ALICE: second.submitted_at, BOB: bob.submitted_at}
    assert all(isinstance(owner, int) and isinstance(at, float) for owner, at in served.items())
    assert (first.submitted_at or 0) <= served[ALICE]
    assert await store.jobs.last_accepted_at() == bob.submitted_at


async def test_last_error_at_per_kind(store: Store) -> None:
    await failed(store, ErrorKind.UNAUTHORISED)
    latest = await failed(store, ErrorKind.UNAUTHORISED)
    busy = await failed(store, ErrorKind.BUSY)
    await failed(store, ErrorKind.MODERATED)
    found = await store.jobs.last_error_at((ErrorKind.UNAUTHORISED, ErrorKind.BUSY, ErrorKind.NEEDS_HUMAN))
    assert found == {ErrorKind.UNAUTHORISED: latest.finished_at, ErrorKind.BUSY: busy.finished_at}
    assert all(type(kind) is ErrorKind for kind in found)


async def test_an_imported_job_is_completed_and_published_once(store: Store) -> None:
    made = 1_700_000_000.125
    imported = await store.jobs.import_completed(
        guild_id=GUILD, channel_id=CHANNEL, owner_id=ALICE, backend=BACKEND, backend_job_id="outside-1",
        prompt="from elsewhere", buttons=(Button("U1", "ref-u1"),), media=(Media("https://cdn.example/x.png"),),
        done_buttons=("U2",), job_json={"id": "outside-1", "prompt": "日本語"}, created_at=made, simulated=True)
    assert (imported.status, imported.progress, imported.published, imported.simulated) == (COMPLETED, 100, True, True)
    assert (imported.created_at, imported.finished_at) == (made, made)
    assert imported.buttons == (Button("U1", "ref-u1"),) and imported.done_buttons == ("U2",)
    assert await store.jobs.queued_briefs() == [] and await store.jobs.unpublished_final() == []
    again = await store.jobs.import_completed(
        guild_id=GUILD + 5, channel_id=CHANNEL, owner_id=BOB, backend=BACKEND, backend_job_id="outside-1",
        prompt="other words", buttons=(), media=(), done_buttons=(), job_json={})
    assert again == imported
    elsewhere = await store.jobs.import_completed(
        guild_id=GUILD, channel_id=CHANNEL, owner_id=ALICE, backend="useapi", backend_job_id="outside-1",
        prompt="p", buttons=(), media=(), done_buttons=(), job_json={})
    assert elsewhere.id != imported.id and elsewhere.created_at == elsewhere.finished_at
    assert await store.jobs.count_all() == 2


@pytest.mark.parametrize("kind", [ErrorKind.UNTRACKABLE, ErrorKind.TIMED_OUT])
async def test_a_late_failure_may_still_complete(store: Store, kind: ErrorKind) -> None:
    # The relay finishes a late-failed job again when its result comes: FAILED is an expected state then.
    job = await failed(store, kind)
    done = await store.jobs.finish(job.id, COMPLETED, expect=(FAILED,), media=(Media("https://cdn.example/l.png"),))
    assert done is not None and (done.status, done.error, done.error_kind) == (COMPLETED, None, None)
