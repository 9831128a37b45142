"""The UTC day a quota counts, and the words a member reads when a limit stops them (or asks with /quota)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.limits import DAY_SECONDS, Allowance, Usage, day_start, next_reset

MIDNIGHT = datetime(2024, 3, 10, tzinfo=UTC).timestamp()
RESET = MIDNIGHT + DAY_SECONDS
WHEN = f"<t:{int(RESET)}:t> (<t:{int(RESET)}:R>)"


@pytest.mark.parametrize("offset", [0.0, 0.5, 3600.0, DAY_SECONDS - 0.001])
def test_the_day_starts_at_midnight_utc(offset: float) -> None:
    assert day_start(MIDNIGHT + offset) == MIDNIGHT
    assert next_reset(MIDNIGHT + offset) == RESET


def test_at_midnight_the_reset_is_the_next_one_not_now() -> None:
    # A member refused at 00:00:00 must be told tomorrow's reset, not "resets now".
    assert next_reset(RESET) == RESET + DAY_SECONDS


def usage(queue_limit: int, daily_quota: int, waiting_or_running: int, sent_today: int) -> Usage:
    return Usage(Allowance(queue_limit=queue_limit, daily_quota=daily_quota), waiting_or_running, sent_today, RESET)


def test_a_full_queue_is_refused_with_the_numbers() -> None:
    assert usage(3, 0, 3, 0).refusal() == (
        "Nothing was sent: you already have 3 jobs waiting or running in this server, and the queue limit is 3. A "
        "place frees up as soon as one of them finishes; see them with `/jobs`.")


def test_a_used_up_quota_is_refused_with_the_reset() -> None:
    assert usage(0, 10, 0, 10).refusal() == (
        f"Nothing was sent: you have used today's quota of 10 jobs in this server. It resets at 00:00 UTC, {WHEN}.")


def test_the_queue_is_named_first_when_both_are_used_up() -> None:
    # A place in the queue frees up sooner than the day ends.
    refusal = usage(2, 5, 2, 5).refusal()
    assert refusal is not None
    assert "queue limit is 2" in refusal


@pytest.mark.parametrize(("queue_limit", "daily_quota", "waiting", "sent"), [
    (3, 10, 2, 9),  # one short of each
    (0, 0, 500, 500),  # 0 is no limit
])
def test_within_limits_nothing_is_refused(queue_limit: int, daily_quota: int, waiting: int, sent: int) -> None:
    assert usage(queue_limit, daily_quota, waiting, sent).refusal() is None


def test_a_queue_limit_of_one_reads_in_the_singular() -> None:
    refusal = usage(1, 0, 1, 0).refusal()
    assert refusal is not None
    assert "you already have 1 job waiting or running" in refusal


def test_summary_with_both_limits() -> None:
    assert usage(3, 10, 1, 4).summary() == "\n".join([
        f"**Today:** 4 of 10 jobs used, 6 left. Resets at 00:00 UTC, {WHEN}.",
        "**Waiting or running:** 1 of 3; room for 2 more.",
        "Jobs refused before they ran do not count.",
    ])


def test_summary_over_a_lowered_limit_says_none_left_not_a_negative() -> None:
    # An admin lowered the limits after the member had used more.
    lines = usage(2, 5, 4, 8).summary().splitlines()
    assert lines[0] == f"**Today:** 8 of 5 jobs used, 0 left. Resets at 00:00 UTC, {WHEN}."
    assert lines[1] == "**Waiting or running:** 4 of 2; room for 0 more."


def test_summary_without_limits() -> None:
    assert usage(0, 0, 2, 7).summary() == "\n".join([
        "**Today:** 7 jobs sent; there is no daily quota.",
        "**Waiting or running:** 2; there is no queue limit.",
        "Jobs refused before they ran do not count.",
    ])


def test_summary_after_one_job_reads_in_the_singular() -> None:
    assert usage(0, 0, 0, 1).summary().splitlines()[0] == "**Today:** 1 job sent; there is no daily quota."
