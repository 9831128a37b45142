"""The coordination's contract, the same for one SQLite process and several PostgreSQL ones: slots claimed by
the fair share up to the capacity, who holds each job, leases renewed, released and taken over, publishing
once, the per-channel edit budget. tests/store/test_processes.py adds what only several processes can show."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.jobs import COMPLETED, FAILED, QUEUED, RUNNING, SUBMITTING, ErrorKind, JobRecord
from bot.relay.fairshare import pick
from bot.store import Store
from tests.store.conftest import Rig
from tests.store.helpers import ALICE, BOB, new_job, running

LEASE = 60.0
CAROL = ALICE + 1000


async def claim(store: Store, capacity: int = 3, now: float | None = None) -> JobRecord | None:
    moment = time.time() if now is None else now
    return await store.coordination.claim_next(capacity=capacity, now=moment, until=moment + LEASE, pick=pick)


async def waiting(store: Store, **create: Any) -> JobRecord:
    """A job filed as the relay files one: held by the process that filed it, its working message up."""
    job = await new_job(store, **create)
    assert await store.coordination.hold(job.id, time.time() + LEASE) is not None
    shown = await store.jobs.set_message(job.id, 800_000_000_000_000_000 + job.id)
    assert shown is not None
    return shown


async def test_a_claim_takes_the_fair_shares_pick_and_holds_it(store: Store) -> None:
    served = await running(store, owner=ALICE)  # Alice was served; Bob never was
    alice = await waiting(store, owner=ALICE)
    bob = await waiting(store, owner=BOB)
    claimed = await claim(store)
    assert claimed is not None and claimed.id == bob.id
    assert (claimed.status, claimed.attempts, claimed.claimed_by) == (SUBMITTING, 1, store.coordination.me)
    again = await claim(store)
    assert again is not None and again.id == alice.id
    assert await claim(store) is None, "nothing left waiting"
    assert served.id < alice.id


async def test_a_claim_never_passes_the_capacity(store: Store) -> None:
    await running(store)
    filed = [await waiting(store, owner=owner) for owner in (ALICE, BOB, CAROL)]
    assert await claim(store, capacity=1) is None, "the one slot is taken"
    assert (await claim(store, capacity=2)) is not None
    assert await claim(store, capacity=2) is None
    assert {j.status for j in await store.jobs.in_states((QUEUED,))} == {QUEUED}
    assert len(await store.jobs.in_states((QUEUED,))) == len(filed) - 1


async def test_a_job_not_ready_yet_is_not_claimed(store: Store) -> None:
    job = await waiting(store)
    await store.jobs.mark_submitting(job.id)
    await store.jobs.requeue(job.id, time.time() + 60)
    assert await claim(store) is None
    assert (await claim(store, now=time.time() + 61)) is not None


async def test_a_job_is_held_by_the_process_that_filed_it(store: Store, rig: Rig) -> None:
    job = await new_job(store)
    assert job.claimed_by is None
    held = await store.coordination.hold(job.id, time.time() + LEASE)
    assert held is not None and held.claimed_by == store.coordination.me
    assert await store.coordination.hold(job.id, time.time() + LEASE) is not None, "holding again is a no-op"
    other = await rig.open()
    if not other.coordination.exclusive:
        assert await other.coordination.hold(job.id, time.time() + LEASE) is None, "held by a live process"


async def test_a_job_filed_with_its_holder_is_held_from_its_creation(store: Store, rig: Rig) -> None:
    until = time.time() + LEASE
    job = await new_job(store, holder=(store.coordination.me, until))
    assert job.claimed_by == store.coordination.me
    assert rig.fetch(f"SELECT lease_until FROM jobs WHERE id = {job.id}") == [{"lease_until": until}]
    other = await rig.open()
    if not other.coordination.exclusive:
        assert await other.coordination.hold(job.id, time.time() + LEASE) is None, "held by a live process"


async def test_a_job_being_filed_is_claimed_only_once_its_message_is_up(store: Store, rig: Rig) -> None:
    job = await new_job(store)
    assert await claim(store) is None, "nobody holds it yet: its filer is about to post its working message"
    await store.coordination.hold(job.id, time.time() + LEASE)
    other = await rig.open()
    if not other.coordination.exclusive:
        assert await claim(other) is None, "held by its filer, which has not posted its working message yet"
    await store.jobs.set_message(job.id, 123)
    claimed = await claim(other)
    assert claimed is not None and claimed.id == job.id and claimed.claimed_by == other.coordination.me


async def test_a_job_of_a_process_gone_is_taken_over_once(store: Store, rig: Rig) -> None:
    now = time.time()
    queued = await waiting(store)
    sent = await claim(store)
    assert sent is not None and sent.id == queued.id
    loose = await new_job(store, owner=BOB)  # filed, never held (the process died in between)
    rig.fetch("UPDATE jobs SET updated_at = ? WHERE id = ?", now - 60, loose.id)
    done = await running(store, owner=CAROL)
    await store.coordination.hold(done.id, now + LEASE)
    await store.jobs.finish(done.id, COMPLETED, expect=(RUNNING,))
    await store.jobs.mark_published(done.id, COMPLETED, 1, None)
    await rig.close(store)  # the process is gone: its leases have not run out, but nobody holds them

    survivor = await rig.open()
    taken = await survivor.coordination.take_over(now=now, until=now + LEASE, late_since=now - 3600)
    assert [(j.id, j.status) for j in taken] == [(queued.id, SUBMITTING), (loose.id, QUEUED)]
    assert {j.claimed_by for j in taken} == {survivor.coordination.me}
    assert await survivor.coordination.take_over(now=now, until=now + LEASE, late_since=now - 3600) == []


async def test_renewing_keeps_what_needs_a_holder_and_releases_the_rest(store: Store, rig: Rig) -> None:
    now = time.time()
    job = await running(store)
    late = await running(store, owner=BOB)
    for made in (job, late):
        await store.coordination.hold(made.id, now + 1)
    await store.jobs.finish(late.id, FAILED, expect=(RUNNING,), error="timed out", error_kind=ErrorKind.TIMED_OUT)
    await store.jobs.mark_published(late.id, FAILED, 2, None)
    await store.coordination.renew(until=now + LEASE, late_since=now - 3600)
    leases = {row["id"]: row["lease_until"] for row in rig.fetch("SELECT id, lease_until FROM jobs")}
    assert leases == {job.id: now + LEASE, late.id: now + LEASE}, "a late failure is still watched"
    await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    await store.jobs.mark_published(job.id, COMPLETED, 1, None)
    # Past its window the late failure needs nobody either: both leases go.
    await store.coordination.renew(until=now + LEASE, late_since=now + 10)
    assert rig.fetch("SELECT COUNT(*) AS n FROM jobs WHERE lease_until IS NOT NULL") == [{"n": 0}]


async def test_letting_go_ends_the_leases_at_once(store: Store, rig: Rig) -> None:
    now = time.time()
    job = await new_job(store)
    await store.coordination.hold(job.id, now + LEASE)
    await store.coordination.let_go()
    assert rig.fetch("SELECT lease_until FROM jobs") == [{"lease_until": 0}]
    other = await rig.open()
    taken = await other.coordination.take_over(now=now, until=now + LEASE, late_since=now - 3600)
    assert [j.id for j in taken] == [job.id]


async def test_a_result_is_claimed_for_posting_once_at_a_time(store: Store) -> None:
    now = time.time()
    job = await running(store)
    await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    coordination = store.coordination
    assert await coordination.claim_publish(job.id, now=now, until=now + 60) is True
    await coordination.release_publish(job.id)
    assert await coordination.claim_publish(job.id, now=now, until=now + 60) is True
    await store.jobs.mark_published(job.id, COMPLETED, 1, None)
    assert await coordination.claim_publish(job.id, now=now, until=now + 60) is False, "already shown"


async def test_the_edit_budget_gives_one_edit_per_interval_per_channel(store: Store) -> None:
    turn = store.coordination.edit_turn
    assert await turn(1, 2.0, 100.0) == 0.0
    assert await turn(1, 2.0, 100.5) == 1.5
    assert await turn(2, 2.0, 100.5) == 0.0, "another channel has its own"
    assert await turn(1, 2.0, 102.0) == 0.0
    assert await turn(1, 2.0, 103.0) == 1.0


def _first(candidates: Sequence[JobRecord], _served: Mapping[int, float]) -> JobRecord:
    return candidates[0]


async def test_the_claim_applies_the_rule_it_is_given(store: Store) -> None:
    first = await waiting(store, owner=BOB)
    await waiting(store, owner=ALICE)
    claimed = await store.coordination.claim_next(capacity=3, now=time.time(), until=time.time() + 1, pick=_first)
    assert claimed is not None and claimed.id == first.id
