"""A job button's custom_id, and the small text helpers of a job's card."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.render import (
    BAR_CELLS,
    MESSAGE_LIMIT,
    ButtonId,
    custom_id,
    described,
    final_content,
    parse_custom_id,
    progress_bar,
    shorten,
    title,
)
from tests.unit.factories import IDENTITY, job_record

identities = st.text(alphabet="0123456789abcdef", min_size=10, max_size=10)


@given(identity=identities, job_id=st.integers(min_value=0, max_value=10**18 - 1),
       index=st.integers(min_value=0, max_value=999))
def test_custom_id_round_trip(identity: str, job_id: int, index: int) -> None:
    value = custom_id(identity, job_id, index)
    assert parse_custom_id(value) == ButtonId(identity, job_id, index)
    assert len(value) <= 100  # Discord's limit for a custom_id


def test_a_button_posted_before_identities_has_no_database() -> None:
    assert parse_custom_id("mj:b:12:3") == ButtonId(None, 12, 3)


@pytest.mark.parametrize("value", [
    "",
    "mj:b",
    "mj:b:12",
    "mj:b:12:3:4",
    "mj:b:12:3 ",
    "mj:b:x:3",
    "mj:b:١٢:3",  # Arabic-Indic digits are digits to Python, but no job number of ours
    f"mj:b:{IDENTITY}:١٢:3",
    "mj:b:ABCDEF0123:12:3",  # identities are lowercase
    "mj:b:012345678:12:3",  # nine hex digits: not an identity
    "mj:b:" + "9" * 19 + ":3",  # over 18 digits: would overflow SQLite's INTEGER
    "mj:b:12:1000",
    "mj:zoom:12:3",
    "xmj:b:12:3",
])
def test_junk_custom_ids_are_refused(value: str) -> None:
    assert parse_custom_id(value) is None


@pytest.mark.parametrize(("text", "limit", "shortened"), [
    ("a red fox", 9, "a red fox"),
    ("a red fox", 100, "a red fox"),
    ("a red fox", 8, "a red f…"),
    ("a red fox", 1, "…"),
    ("", 5, ""),
])
def test_shorten(text: str, limit: int, shortened: str) -> None:
    assert shorten(text, limit) == shortened


@given(text=st.text(max_size=300), limit=st.integers(min_value=1, max_value=200))
def test_shorten_never_exceeds_the_limit(text: str, limit: int) -> None:
    # Discord refuses a message or a label over its limit: the whole edit would fail, not just the long part.
    result = shorten(text, limit)
    assert len(result) <= limit
    assert result == text or (result.endswith("…") and text.startswith(result[:-1]))


@pytest.mark.parametrize(("percent", "bar"), [
    (0, "▱▱▱▱▱▱▱▱▱▱ 0%"),
    (50, "▰▰▰▰▰▱▱▱▱▱ 50%"),
    (100, "▰▰▰▰▰▰▰▰▰▰ 100%"),
    (-5, "▱▱▱▱▱▱▱▱▱▱ 0%"),  # never a negative figure
    (150, "▰▰▰▰▰▰▰▰▰▰ 100%"),  # nor more than full
])
def test_progress_bar(percent: int, bar: str) -> None:
    assert progress_bar(percent) == bar


@given(low=st.integers(min_value=-50, max_value=150), high=st.integers(min_value=-50, max_value=150))
def test_progress_bar_has_ten_cells_and_never_goes_back(low: int, high: int) -> None:
    low, high = min(low, high), max(low, high)
    cells_low, cells_high = progress_bar(low).split(" ")[0], progress_bar(high).split(" ")[0]
    assert len(cells_low) == len(cells_high) == BAR_CELLS
    assert cells_low.count("▰") <= cells_high.count("▰")


def test_a_job_without_a_prompt_is_named_by_its_command() -> None:
    assert title(job_record(prompt="a fox")) == "a fox"
    assert title(job_record(prompt="", action="describe")) == "🔍 Describe"
    assert title(job_record(prompt="", action="blend", dimensions="portrait")) == "🔀 Blend (portrait)"
    assert title(job_record(prompt="", action="blend")) == "🔀 Blend"


def test_a_description_numbers_its_prompts_as_its_buttons_and_fits_one_message() -> None:
    job = job_record(prompt="", action="describe", prompts=("a *bold* fox", "x" * 3000, "c", "d"))
    lines = described(job)
    assert lines[0] == "1️⃣ a \\*bold\\* fox" and [line.split(" ")[0] for line in lines] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert len(final_content(job)) <= MESSAGE_LIMIT and "4️⃣ d" in final_content(job)
