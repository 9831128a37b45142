"""The relay-wide state every process reads (pause, reduced concurrency, outage), admin alerts once per episode,
the interactions kept for private notices, and the per-owner reads of the fair share, in either dialect."""

from __future__ import annotations

import time

from bot.jobs import COMPLETED, QUEUED, RUNNING, Notice, OutageState, Pause, SharedState
from bot.store import Store
from tests.store.conftest import Rig
from tests.store.helpers import ALICE, BOB, GUILD, new_job, running


async def test_the_shared_state_starts_clear_and_is_read_in_one(store: Store) -> None:
    assert await store.state.shared() == SharedState()
    await store.state.set_pause(Pause("a moderation message", "acct-1"))
    await store.state.reduce_concurrency(1_000.5)
    assert await store.state.shared() == SharedState(Pause("a moderation message", "acct-1"), 1_000.5)


async def test_a_later_reduction_wins_over_an_earlier_one(store: Store, rig: Rig) -> None:
    await store.state.reduce_concurrency(2_000.0)
    await store.state.reduce_concurrency(1_500.0)
    assert (await store.state.shared()).reduced_until == 2_000.0
    assert (await (await rig.reopen(store)).state.shared()).reduced_until == 2_000.0


async def test_the_outage_moves_only_from_what_the_writer_saw(store: Store, rig: Rig) -> None:
    begun = OutageState(since=100.25, round=1, retry_at=102.5)
    assert await store.state.set_outage(begun, expect=OutageState()) is True
    # A second process that saw the backend answering loses: the outage is already on.
    assert await store.state.set_outage(OutageState(100.5, 1, 103.0), expect=OutageState()) is False
    other = await rig.open()
    assert (await other.state.shared()).outage == begun
    next_round = OutageState(100.25, 2, 106.0)
    assert await other.state.set_outage(next_round, expect=begun) is True
    assert await store.state.set_outage(OutageState(), expect=begun) is False, "stale: round 2 came meanwhile"
    assert await store.state.set_outage(OutageState(), expect=next_round) is True
    assert (await other.state.shared()).outage == OutageState()


async def test_admins_hear_once_per_episode_per_server(store: Store, rig: Rig) -> None:
    now = time.time()
    assert await store.state.alert_once("unauthorised", GUILD, now) is True
    other = await rig.open()
    assert await other.state.alert_once("unauthorised", GUILD, now) is False, "another process: not twice"
    assert await other.state.alert_once("unauthorised", GUILD + 1, now) is True
    assert await store.state.alert_once("needs_human", None, now) is True
    assert await store.state.alert_once("needs_human", None, now) is False
    await other.state.alerts_over(["unauthorised", "no_subscription"])
    assert await store.state.alert_once("unauthorised", GUILD, now) is True, "a new episode"
    assert await store.state.alert_once("needs_human", None, now) is False, "still the same episode"


async def test_a_notice_is_kept_until_it_expires(store: Store, rig: Rig) -> None:
    job = await new_job(store)
    now = time.time()
    await store.notices.keep(Notice(job.id, "tok-1", False, now + 840))
    other = await rig.open()
    assert await other.notices.get(job.id, now) == Notice(job.id, "tok-1", False, now + 840)
    await other.notices.keep(Notice(job.id, "tok-2", True, now + 900))
    assert await store.notices.get(job.id, now) == Notice(job.id, "tok-2", True, now + 900), "the latest one"
    assert await store.notices.get(job.id, now + 901) is None
    assert await store.notices.get(job.id + 1, now) is None
    # Expired ones are forgotten by the housekeeping, not by every filing.
    await store.notices.keep(Notice(job.id + 1, "tok-3", False, now + 2000))
    assert len(rig.fetch("SELECT token FROM notices")) == 2
    assert await store.notices.forget_expired(now + 1000) == 1
    assert rig.fetch("SELECT token FROM notices ORDER BY token") == [{"token": "tok-3"}]


async def test_last_served_of_reads_only_the_owners_asked(store: Store) -> None:
    assert await store.jobs.last_served_of([ALICE, BOB]) == {}
    alice = await running(store, owner=ALICE)
    await new_job(store, owner=BOB)
    served = await store.jobs.last_served_of([ALICE, BOB, ALICE])
    assert served == {ALICE: alice.submitted_at}
    assert await store.jobs.last_served_of([]) == {}
    assert await store.jobs.last_served() == served


async def test_in_states_and_unpublished_final_by_holder(store: Store) -> None:
    held = await running(store)
    loose = await running(store)
    waiting = await new_job(store)
    me = store.coordination.me
    assert await store.coordination.hold(held.id, time.time() + 60) is not None
    assert [j.id for j in await store.jobs.in_states((RUNNING, QUEUED))] == [held.id, loose.id, waiting.id]
    assert [j.id for j in await store.jobs.in_states((RUNNING, QUEUED), claimed_by=me)] == [held.id]
    assert [j.claimed_by for j in await store.jobs.in_states((RUNNING,), claimed_by=me)] == [me]
    await store.jobs.finish(held.id, COMPLETED, expect=(RUNNING,))
    await store.jobs.finish(loose.id, COMPLETED, expect=(RUNNING,))
    assert [j.id for j in await store.jobs.unpublished_final()] == [held.id, loose.id]
    assert [j.id for j in await store.jobs.unpublished_final(claimed_by=me)] == [held.id]
    assert await store.jobs.unpublished_final(claimed_by=me + 1) == []
