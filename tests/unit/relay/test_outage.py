"""The backoff formula and the relay-wide outage: how long jobs wait when the backend does not answer.

The outage lives in the store (every process on a database shares it): these run it on an in-memory SQLite
store, the real one, with the clock pinned."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.jobs import SharedState
from bot.relay import outage
from bot.relay.outage import Outage, backoff
from bot.relay.shared import Shared
from bot.relay.tasks import Wake
from bot.store import SqliteStore


class Jitter:
    """random.uniform pinned to one end of its range, so a delay can be checked exactly."""

    def __init__(self, end: str) -> None:
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


class Clock:
    """time.time() that moves only when the test says."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(outage, "time", fake)
    # The slowest jitter: each round waits its full delay, so the round's end is known exactly.
    monkeypatch.setattr(outage, "random", Jitter("high"))
    return fake


@pytest.mark.parametrize(("attempt", "delay"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)])
def test_backoff_doubles_up_to_the_cap(monkeypatch: pytest.MonkeyPatch, attempt: int, delay: float) -> None:
    monkeypatch.setattr(outage, "random", Jitter("high"))
    assert backoff(2.0, 30.0, attempt) == delay
    monkeypatch.setattr(outage, "random", Jitter("low"))
    assert backoff(2.0, 30.0, attempt) == delay / 2


@pytest.mark.parametrize("attempt", [0, -3])
def test_backoff_before_the_first_try_waits_like_the_first(monkeypatch: pytest.MonkeyPatch, attempt: int) -> None:
    monkeypatch.setattr(outage, "random", Jitter("high"))
    assert backoff(2.0, 30.0, attempt) == backoff(2.0, 30.0, 1) == 2.0


def test_backoff_of_a_huge_attempt_is_the_cap_not_an_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # A job retried for days must not raise OverflowError (2 ** attempt as a float) and stall the scheduler.
    monkeypatch.setattr(outage, "random", Jitter("high"))
    assert backoff(0.5, 600.0, 10**9) == 600.0
    assert backoff(1e-6, float("inf"), 10**9) == pytest.approx(1e-6 * 2**30)


@given(base=st.floats(min_value=0.01, max_value=60.0), cap=st.floats(min_value=0.01, max_value=3600.0),
       attempt=st.integers(min_value=-5, max_value=10_000))
def test_backoff_jitter_stays_in_the_later_half(base: float, cap: float, attempt: int) -> None:
    delay = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 30))
    assert delay / 2 <= backoff(base, cap, attempt) <= delay


class Watched:
    """An outage on a real (in-memory) store, and the changes this process was told of: True down, False back."""

    def __init__(self, store: SqliteStore) -> None:
        self.changes: list[bool] = []
        self.shared = Shared(store, Wake())
        self.shared.observe(self._seen)
        self.outage = Outage("useapi", 2.0, 30.0, store, self.shared)

    def _seen(self, before: SharedState, after: SharedState) -> None:
        if (before.outage.since is None) != (after.outage.since is None):
            self.changes.append(after.outage.since is not None)


@pytest.fixture
async def watched(clock: Clock) -> AsyncIterator[Watched]:
    store = await SqliteStore.open(":memory:")
    made = Watched(store)
    await made.shared.refresh()
    try:
        yield made
    finally:
        await store.close()


async def test_outage_tells_once_when_it_starts_and_once_when_it_ends(clock: Clock, watched: Watched) -> None:
    down, changes = watched.outage, watched.changes
    await down.failed("timeout")
    await down.failed("timeout")
    clock.now += 100.0
    await down.failed("unavailable")
    assert changes == [True]
    await down.answered()
    await down.answered()
    assert changes == [True, False]


async def test_an_answer_without_an_outage_tells_nothing(watched: Watched) -> None:
    await watched.outage.answered()
    assert watched.changes == []


async def test_waiting_lasts_until_the_rounds_end(clock: Clock, watched: Watched) -> None:
    down = watched.outage
    assert not down.waiting
    await down.failed("timeout")
    assert down.waiting
    clock.now += 1.9
    assert down.waiting
    clock.now += 0.1
    assert not down.waiting


async def test_failures_in_flight_during_a_round_do_not_lengthen_it(clock: Clock, watched: Watched) -> None:
    # Ten polls that were sent before the outage began all fail: one round, not ten doublings.
    down = watched.outage
    await down.failed("timeout")
    for _ in range(10):
        clock.now += 0.1
        await down.failed("timeout")
    clock.now = 1_000.0 + 2.0
    assert not down.waiting


async def test_each_new_round_waits_twice_as_long(clock: Clock, watched: Watched) -> None:
    down = watched.outage
    start = clock.now
    await down.failed("timeout")  # round 1: 2 s
    clock.now = start + 2.0
    await down.failed("timeout")  # round 2: 4 s from now
    clock.now = start + 2.0 + 3.9
    assert down.waiting
    clock.now = start + 2.0 + 4.0
    assert not down.waiting


async def test_an_answer_ends_the_wait_and_starts_the_rounds_again(clock: Clock, watched: Watched) -> None:
    down, changes = watched.outage, watched.changes
    for _ in range(3):
        await down.failed("timeout")
        clock.now += 100.0
    await down.failed("timeout")
    await down.answered()
    assert not down.waiting
    await down.failed("timeout")  # a new outage: told again, and back to the first, short round
    assert changes == [True, False, True]
    clock.now += 2.0
    assert not down.waiting


async def test_a_round_another_process_began_is_waited_for_here(clock: Clock, watched: Watched,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    # Two processes on one database: the second's failure starts the round, the first waits it out too.
    path = str(tmp_path_factory.mktemp("outage") / "relay.db")
    first, second = await SqliteStore.open(path), await SqliteStore.open(path)
    try:
        here, there = Watched(first), Watched(second)
        await here.shared.refresh()
        await there.shared.refresh()
        await there.outage.failed("timeout")
        await here.shared.refresh()
        assert here.outage.waiting and here.changes == [True]
        await here.outage.failed("timeout")  # in flight meanwhile: the same round
        await there.shared.refresh()
        assert (there.shared.state.outage.round, here.shared.state.outage.round) == (1, 1)
        await here.outage.answered()
        await there.shared.refresh()
        assert not there.outage.waiting and there.changes == [True, False]
    finally:
        await first.close()
        await second.close()
