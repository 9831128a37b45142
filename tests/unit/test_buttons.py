"""Which row each button goes on, how rows split into messages, which buttons are emoji and which upscale."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.backends.useapi.facts import GRID_BUTTONS, ONE_SHOT_BUTTONS, SUPPORTED_BUTTONS, UPSCALE_BUTTONS
from bot.buttons import (
    BUTTONS_PER_ROW,
    ROWS_PER_MESSAGE,
    describe_buttons,
    describe_pick,
    family,
    is_emoji,
    is_upscale,
    pages,
    rows,
)


@pytest.mark.parametrize(("name", "expected"), [
    ("U1", "U"), ("U4", "U"), ("🔄", "U"),
    ("V1", "V"), ("V4", "V"),
    ("⬅️", "pan"), ("➡️", "pan"), ("⬆️", "pan"), ("⬇️", "pan"),
    ("Vary (Subtle)", "vary"), ("Vary (Strong)", "vary"), ("Vary (Region)", "vary"),
    ("Make Variations", "vary"), ("Remaster", "vary"),
    ("Zoom Out 2x", "zoom"), ("Zoom Out 1.5x", "zoom"), ("Custom Zoom", "zoom"), ("Make Square", "zoom"),
    ("Upscale (Subtle)", "upscale"), ("Upscale (4x)", "upscale"), ("Redo Upscale (2x)", "upscale"),
    # Names that only look like a family's stay out of it.
    ("U5", "other"), ("U12", "other"), ("V0", "other"), ("u1", "other"), ("Web", "other"), ("❤️", "other"),
])
def test_family(name: str, expected: str) -> None:
    assert family(name) == expected


def test_every_button_useapi_supports_has_a_family_of_its_own() -> None:
    # A supported button falling into "other" would be drawn on a stray row of its own.
    assert [name for name in SUPPORTED_BUTTONS if family(name) == "other"] == []


def test_a_grid_is_laid_out_as_midjourney_does() -> None:
    # U1-U4 and 🔄 on the first row, V1-V4 on the second.
    assert rows(GRID_BUTTONS) == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]


def test_an_upscale_is_laid_out_by_family() -> None:
    assert [[UPSCALE_BUTTONS[i] for i in row] for row in rows(UPSCALE_BUTTONS)] == [
        ["Upscale (Subtle)", "Upscale (Creative)"],
        ["Vary (Subtle)", "Vary (Strong)"],
        ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom"],
        ["⬅️", "➡️", "⬆️", "⬇️"],
        ["Animate (High motion)", "Animate (Low motion)"],
    ]


def test_a_family_keeps_its_row_wherever_its_buttons_are_listed() -> None:
    # Rows come in the order each family first appears; a late U2 still joins U1's row.
    assert rows(["U1", "V1", "U2", "Zoom Out 2x", "V2"]) == [[0, 2], [1, 4], [3]]


def test_a_family_of_more_than_five_wraps_onto_another_row() -> None:
    names = ["Upscale (2x)", "Upscale (4x)", "Upscale (Subtle)", "Upscale (Creative)", "Redo Upscale (2x)",
             "Redo Upscale (4x)", "Redo Upscale (Subtle)"]
    assert rows(names) == [[0, 1, 2, 3, 4], [5, 6]]


def test_no_buttons_no_rows_no_pages() -> None:
    assert rows([]) == []
    assert pages([]) == []


def test_thirty_one_buttons_spill_onto_a_second_message() -> None:
    names = [f"Option {n}" for n in range(31)]  # one family: seven rows
    laid = pages(names)
    assert [len(page) for page in laid] == [5, 2]
    assert [index for page in laid for row in page for index in row] == list(range(31))


def test_up_to_five_rows_fit_one_message() -> None:
    names = [*GRID_BUTTONS, "Make Variations", "Zoom Out 2x", "⬅️", "Upscale (2x)"]  # U, V, vary, zoom, pan, upscale
    assert [len(page) for page in pages(names)] == [5, 1]
    assert [len(page) for page in pages(names[:-1])] == [5]


names_from_every_family = st.lists(
    st.sampled_from([*SUPPORTED_BUTTONS, "Web", "❤️", "Option"]), max_size=60)


@given(names=names_from_every_family)
def test_pages_never_drop_repeat_or_overfill(names: list[str]) -> None:
    # Discord refuses a sixth row or a sixth button in a row; a dropped button could never be clicked.
    laid = pages(names)
    assert all(len(page) <= ROWS_PER_MESSAGE for page in laid)
    assert all(1 <= len(row) <= BUTTONS_PER_ROW for page in laid for row in page)
    assert sorted(index for page in laid for row in page for index in row) == list(range(len(names)))
    for page in laid:
        for row in page:
            assert len({family(names[index]) for index in row}) == 1


@pytest.mark.parametrize("name", ["🔄", "⬅️", "➡️", "⬆️", "⬇️", "❤️"])
def test_emoji_buttons(name: str) -> None:
    assert is_emoji(name)


@pytest.mark.parametrize("name", ["", "U1", "V2", "Custom Zoom", "❤️ Web", "⬅️ ", "⬅️⬅️⬅️"])
def test_labelled_buttons(name: str) -> None:
    # ⬅️⬅️⬅️ is six code points: longer than any one emoji, so it is drawn as a label rather than refused.
    assert not is_emoji(name)


@pytest.mark.parametrize(("button", "expected"), [
    ("U1", True), ("U4", True),
    ("Upscale (Subtle)", True), ("Upscale (2x)", True), ("Redo Upscale (Creative)", True),
    ("V1", False), ("🔄", False), ("Vary (Strong)", False), ("Zoom Out 2x", False),
    ("Upscale", False),  # not one of Midjourney's "Upscale (...)" buttons
    (None, False),  # an imagine: a grid
])
def test_is_upscale(button: str | None, expected: bool) -> None:
    assert is_upscale(button, ONE_SHOT_BUTTONS) is expected


def test_a_description_has_a_button_per_prompt_then_describe_again() -> None:
    made = describe_buttons(["a", "b", "c", "d", "e"])
    assert [b.name for b in made] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "🔄"]
    assert [describe_pick(b) for b in made] == [0, 1, 2, 3, None]
    assert [b.name for b in describe_buttons(["only one"])] == ["1️⃣", "🔄"]
    assert all(b.ref.startswith("relay:") for b in made), "never a backend's reference"
    assert rows([b.name for b in made]) == [[0, 1, 2, 3], [4]]
