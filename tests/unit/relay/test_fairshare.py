"""The fair-share rule: whoever was served longest ago goes next, so one member's burst cannot starve the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from bot.jobs import JobBrief
from bot.relay.fairshare import pick, round_robin, turn_key

ALICE, BOB, CAROL = 1, 2, 3


def brief(job_id: int, owner_id: int) -> JobBrief:
    return JobBrief(id=job_id, owner_id=owner_id, channel_id=9, message_id=None, error=None)


def test_turn_key_puts_never_served_owners_before_anyone_served() -> None:
    served = {ALICE: 1_700_000_000.0}
    assert turn_key(brief(50, BOB), served) < turn_key(brief(1, ALICE), served)


def test_turn_key_breaks_a_tie_by_the_older_job() -> None:
    assert turn_key(brief(4, ALICE), {}) < turn_key(brief(7, BOB), {})


def test_pick_takes_the_owner_served_longest_ago_not_the_oldest_job() -> None:
    served = {ALICE: 200.0, BOB: 100.0}
    assert pick([brief(1, ALICE), brief(2, BOB)], served) == brief(2, BOB)


def test_pick_serves_a_newcomer_first() -> None:
    served = {ALICE: 100.0, BOB: 50.0}
    assert pick([brief(1, ALICE), brief(2, BOB), brief(3, CAROL)], served).owner_id == CAROL


def test_pick_between_never_served_owners_goes_by_job_number() -> None:
    assert pick([brief(8, BOB), brief(5, ALICE), brief(9, CAROL)], {}).id == 5


def test_one_members_twenty_clicks_do_not_starve_a_colleagues_one() -> None:
    # Alice clicked twenty times before Bob clicked once: Bob's job is second, not twenty-first.
    queued = [brief(job_id, ALICE) for job_id in range(1, 21)] + [brief(21, BOB)]
    order = [job.id for job in round_robin(queued, {})]
    assert order == [1, 21, *range(2, 21)]


def test_a_member_just_served_waits_behind_one_who_was_not() -> None:
    queued = [brief(job_id, ALICE) for job_id in range(1, 4)] + [brief(4, BOB)]
    assert [job.id for job in round_robin(queued, {ALICE: 500.0, BOB: 100.0})] == [4, 1, 2, 3]


def test_round_robin_alternates_between_owners_in_job_order() -> None:
    queued = [brief(6, BOB), brief(1, ALICE), brief(2, ALICE), brief(3, BOB), brief(4, CAROL), brief(5, ALICE)]
    assert [job.id for job in round_robin(queued, {})] == [1, 3, 4, 2, 6, 5]


def test_round_robin_of_nothing_is_nothing() -> None:
    assert round_robin([], {ALICE: 1.0}) == []


def _scheduler(queued: Sequence[JobBrief], last_served: Mapping[int, float]) -> list[JobBrief]:
    """What the scheduler does with every job ready: pick among each owner's oldest job, then mark that owner
    served now (later than anything recorded)."""
    remaining = sorted(queued, key=lambda job: job.id)
    served = dict(last_served)
    now = max(served.values(), default=0.0)
    sent: list[JobBrief] = []
    while remaining:
        oldest: dict[int, JobBrief] = {}
        for job in remaining:
            oldest.setdefault(job.owner_id, job)
        job = pick(list(oldest.values()), served)
        remaining.remove(job)
        sent.append(job)
        now += 10.0
        served[job.owner_id] = now
    return sent


owners = st.integers(min_value=1, max_value=5)


@given(
    jobs=st.lists(owners, max_size=30).flatmap(
        lambda owned: st.permutations(list(enumerate(owned, start=1)))),
    last_served=st.dictionaries(owners, st.floats(min_value=0.0, max_value=2e9), max_size=5),
)
def test_round_robin_is_the_order_repeated_picks_send(jobs: list[tuple[int, int]],
                                                      last_served: dict[int, float]) -> None:
    # The display shows each waiting job the place `round_robin` gives it: it must be where the scheduler's
    # picks actually put it, or members are told a wrong place in line.
    queued = [brief(job_id, owner_id) for job_id, owner_id in jobs]
    order = round_robin(queued, last_served)
    assert order == _scheduler(queued, last_served)
    assert sorted(job.id for job in order) == sorted(job.id for job in queued)
    # Each member's own jobs keep the order they were asked in.
    for owner_id in {job.owner_id for job in queued}:
        mine = [job.id for job in order if job.owner_id == owner_id]
        assert mine == sorted(mine)
