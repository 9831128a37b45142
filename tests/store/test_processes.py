"""What only several processes on one PostgreSQL database can show: claims racing never pass the capacity nor
take a job twice, a process is seen alive by its session lock and gone the moment that session is, wake-ups
and pokes reach the others, one process holds the gateway and another takes it when that one's session dies.
Each store opened here is one process: its own pool, its own session, its own key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.jobs import COMPLETED, QUEUED, RUNNING, SUBMITTING
from bot.relay.fairshare import pick
from bot.store import PostgresStore
from bot.store.postgres.session import PROCESS_LOCKS
from tests.harness import eventually
from tests.pgserver import PgServer
from tests.store.helpers import ALICE, BOB, new_job, running

LEASE = 60.0


@pytest.fixture
async def processes(pg_url: str) -> AsyncIterator[list[PostgresStore]]:
    opened = [await PostgresStore.open(pg_url) for _ in range(2)]
    try:
        yield opened
    finally:
        for store in opened:
            await store.close()


async def start(store: PostgresStore) -> tuple[list[str], list[int]]:
    """Start the store's session; what it hears: wake-ups, and the jobs it is poked about."""
    wakes: list[str] = []
    pokes: list[int] = []
    await store.coordination.start(lambda: wakes.append("wake"), pokes.append)
    return wakes, pokes


def kill_session(server: PgServer, url: str, store: PostgresStore) -> None:
    """End the store's session on the server's side, as a crash or a lost network would."""
    server.fetch(url, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND classid = $1 AND objid = $2", PROCESS_LOCKS, store.coordination.me)


async def test_claims_racing_from_two_processes_never_pass_the_capacity(processes: list[PostgresStore]) -> None:
    first, second = processes
    for number in range(20):
        job = await new_job(first, owner=ALICE + number % 5, prompt=f"job {number}")
        await first.jobs.set_message(job.id, 900 + number)  # filed: its working message is up
    now = time.time()

    async def claim(store: PostgresStore) -> int | None:
        job = await store.coordination.claim_next(capacity=3, now=now, until=now + LEASE, pick=pick)
        return job.id if job else None

    results = await asyncio.gather(*(claim(store) for _ in range(10) for store in processes))
    claimed = [job for job in results if job is not None]
    assert len(claimed) == 3 and len(set(claimed)) == 3
    rows = await first.jobs.in_states((SUBMITTING,))
    assert sorted(job.id for job in rows) == sorted(claimed)
    assert {job.claimed_by for job in rows} <= {first.coordination.me, second.coordination.me}
    # The fair share across both: the three claimed are of three different owners.
    assert len({job.owner_id for job in rows}) == 3
    assert len(await second.jobs.in_states((QUEUED,))) == 17


async def test_a_live_processs_jobs_stay_its_own_until_its_session_goes(pg_server: PgServer, pg_url: str,
                                                                       processes: list[PostgresStore]) -> None:
    holder, survivor = processes
    await start(holder)
    await start(survivor)
    now = time.time()
    job = await running(holder)
    assert await holder.coordination.hold(job.id, now + LEASE) is not None
    take = survivor.coordination.take_over
    assert await take(now=now, until=now + LEASE, late_since=now - 3600) == [], "alive, and its lease runs"
    filing = await new_job(holder)  # nobody holds it yet: its filer holds it a moment later
    assert await take(now=now, until=now + LEASE, late_since=now - 3600) == []
    assert await holder.coordination.hold(filing.id, now + LEASE) is not None
    # A process stalled so long that its lease ran out loses its jobs even though its session lives.
    stalled = await take(now=now + LEASE + 1, until=now + 2 * LEASE, late_since=now - 3600)
    assert [j.id for j in stalled] == [job.id, filing.id]
    assert await holder.coordination.hold(job.id, now + LEASE) is None

    other = await running(holder, owner=BOB)
    await holder.coordination.hold(other.id, now + LEASE)
    kill_session(pg_server, pg_url, holder)
    taken = await eventually(lambda: take(now=time.time(), until=time.time() + LEASE, late_since=now - 3600),
                             timeout=10)
    assert [j.id for j in taken] == [other.id] and taken[0].claimed_by == survivor.coordination.me
    # The holder's session is made again by itself; the jobs taken meanwhile stay taken.
    await eventually(lambda: pg_server.fetch(pg_url, "SELECT COUNT(*) AS n FROM pg_locks WHERE classid = $1 "
                                                     "AND objid = $2", PROCESS_LOCKS, holder.coordination.me)
                     == [{"n": 1}], timeout=10)


async def test_wake_ups_and_pokes_reach_the_other_process_only(processes: list[PostgresStore]) -> None:
    first, second = processes
    first_wakes, first_pokes = await start(first)
    second_wakes, second_pokes = await start(second)
    first.coordination.wake_others()
    await eventually(lambda: second_wakes, timeout=5)
    await first.coordination.poke(second.coordination.me, 42)
    await first.coordination.poke(first.coordination.me, 7)  # its own job: called at once, no NOTIFY
    await eventually(lambda: second_pokes == [42], timeout=5)
    await asyncio.sleep(0.2)
    assert first_wakes == [], "a process does not wake itself through the database"
    assert first_pokes == [7]


async def test_one_process_holds_the_gateway_and_another_takes_it_when_it_dies(
        pg_server: PgServer, pg_url: str, processes: list[PostgresStore]) -> None:
    first, second = processes
    await start(first)
    await start(second)
    await asyncio.wait_for(first.coordination.gateway.acquire(), 5)
    waiting = asyncio.create_task(second.coordination.gateway.acquire())
    await asyncio.sleep(1.5)
    assert not waiting.done(), "the gateway is held: the other stands by"
    lost = asyncio.create_task(first.coordination.gateway.lost())
    kill_session(pg_server, pg_url, first)
    await asyncio.wait_for(lost, 10)
    await asyncio.wait_for(waiting, 10)
    # The first process's session comes back, but the gateway is the second's now.
    again = asyncio.create_task(first.coordination.gateway.acquire())
    await asyncio.sleep(2.5)
    assert not again.done()
    await second.coordination.gateway.release()
    await asyncio.wait_for(again, 10)


async def test_a_publish_claim_of_a_process_gone_stops_counting(pg_server: PgServer, pg_url: str,
                                                                processes: list[PostgresStore]) -> None:
    first, second = processes
    await start(first)
    await start(second)
    now = time.time()
    job = await running(first)
    await first.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    assert await first.coordination.claim_publish(job.id, now=now, until=now + 300)
    assert not await second.coordination.claim_publish(job.id, now=now, until=now + 300), "being posted"
    assert await second.coordination.claim_publish(job.id, now=now + 301, until=now + 600), "it ran out"
    await second.coordination.release_publish(job.id)
    assert await first.coordination.claim_publish(job.id, now=now, until=now + 300)
    kill_session(pg_server, pg_url, first)
    await eventually(lambda: second.coordination.claim_publish(job.id, now=time.time(), until=time.time() + 300),
                     timeout=10)


async def test_the_edit_budget_is_shared_by_the_processes(processes: list[PostgresStore]) -> None:
    first, second = processes
    assert await first.coordination.edit_turn(5, 2.0, 100.0) == 0.0
    assert await second.coordination.edit_turn(5, 2.0, 101.0) == 1.0
    assert await second.coordination.edit_turn(5, 2.0, 102.0) == 0.0
