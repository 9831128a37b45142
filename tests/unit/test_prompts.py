"""What a member typed, checked before anything is sent: each refusal names its reason and costs no call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.backends.useapi.backend import FACTS
from bot.backends.useapi.facts import CUSTOM_ZOOM, MAX_PROMPT, REMIX_BUTTONS
from bot.prompts import check_custom_zoom, check_prompt, custom_zoom_default, too_long

NEEDS_ONE_ZOOM = "Custom Zoom needs exactly one `--zoom` value between 1 and 2, e.g. `--zoom 1.5`."


def test_a_prompt_of_the_limit_is_not_too_long() -> None:
    assert too_long("x" * MAX_PROMPT, FACTS) is None


def test_one_character_over_says_how_long_and_the_limit() -> None:
    assert too_long("x" * (MAX_PROMPT + 1), FACTS) == "The prompt is 2049 characters; useapi accepts at most 2048."


@pytest.mark.parametrize(("parent", "default"), [
    ("a red fox", "a red fox --zoom 2"),
    ("a red fox --zoom 1.5", "a red fox --zoom 2"),
    ("a red fox --zoom 2", "a red fox --zoom 2"),
])
def test_custom_zoom_default(parent: str, default: str) -> None:
    assert custom_zoom_default(parent) == default


def test_custom_zoom_default_keeps_the_other_parameters() -> None:
    # The parent's --zoom in the middle goes; everything else stays, in order. (It leaves a double space where the
    # old value was, which Midjourney ignores: compared word by word.)
    default = custom_zoom_default("a red fox --zoom 1.5 --ar 2:3 --zoom 1.2")
    assert default.split() == ["a", "red", "fox", "--ar", "2:3", "--zoom", "2"]


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz:", min_size=1, max_size=8)
parameters = st.sampled_from(["--ar 2:3", "--zoom 1.5", "--zoom 2", "--zoom 1", "--stylize 250", "--v 6"])


@given(parts=st.lists(st.one_of(words, parameters), min_size=1, max_size=12))
def test_the_custom_zoom_default_is_always_accepted(parts: list[str]) -> None:
    # The modal is pre-filled with it: sending it unchanged must never be refused.
    assert check_custom_zoom(custom_zoom_default(" ".join(parts)), FACTS) is None


@pytest.mark.parametrize("prompt", ["a fox --zoom 1", "a fox --zoom 2", "a fox --zoom 1.5", "a fox --zoom 2.0",
                                    "--zoom 1.25 a fox"])
def test_a_zoom_from_1_to_2_inclusive_is_accepted(prompt: str) -> None:
    assert check_custom_zoom(prompt, FACTS) is None


@pytest.mark.parametrize(("prompt", "problem"), [
    ("", "The prompt is empty."),
    ("   ", "The prompt is empty."),
    ("a fox", NEEDS_ONE_ZOOM),
    ("a fox --zoom", NEEDS_ONE_ZOOM),
    ("a fox --zoom=1.5", NEEDS_ONE_ZOOM),
    ("a fox --zoom 1.5 --zoom 2", NEEDS_ONE_ZOOM),
    ("a fox --zoom x", "`--zoom x` is not a number: use a value between 1 and 2."),
    ("a fox --zoom 1.5x", "`--zoom 1.5x` is not a number: use a value between 1 and 2."),
    ("a fox --zoom 0.99", "`--zoom 0.99` is out of range: use a value between 1 and 2."),
    ("a fox --zoom 2.01", "`--zoom 2.01` is out of range: use a value between 1 and 2."),
    ("a fox --zoom -1.5", "`--zoom -1.5` is out of range: use a value between 1 and 2."),
    ("a fox --zoom nan", "`--zoom nan` is out of range: use a value between 1 and 2."),  # float() takes it
])
def test_custom_zoom_refusals(prompt: str, problem: str) -> None:
    assert check_custom_zoom(prompt, FACTS) == problem


def test_a_custom_zoom_too_long_says_so_before_anything_else() -> None:
    prompt = "x" * MAX_PROMPT + " --zoom 9"
    assert check_custom_zoom(prompt, FACTS) == "The prompt is 2057 characters; useapi accepts at most 2048."


def test_custom_zoom_without_a_prompt() -> None:
    assert check_prompt(CUSTOM_ZOOM, None, True, FACTS) == (
        "Custom Zoom needs a prompt with `--zoom` between 1 and 2, e.g. the job's prompt and `--zoom 2`.")


def test_custom_zoom_checks_its_prompt() -> None:
    assert check_prompt(CUSTOM_ZOOM, "a fox --zoom 3", True, FACTS) == (
        "`--zoom 3` is out of range: use a value between 1 and 2.")


def test_custom_zoom_takes_its_prompt_whatever_the_accounts_remix() -> None:
    # Custom Zoom always sends a prompt; the account's Remix mode only matters to the Remix buttons.
    for remix in (True, False, None):
        assert check_prompt(CUSTOM_ZOOM, "a fox --zoom 1.5", remix, FACTS) is None


@pytest.mark.parametrize("button", ["U1", "V1", "🔄", "Zoom Out 2x", "Upscale (Subtle)"])
def test_no_prompt_is_fine_for_other_buttons(button: str) -> None:
    assert check_prompt(button, None, False, FACTS) is None


@pytest.mark.parametrize("button", ["U1", "Zoom Out 2x", "Upscale (Subtle)", "Make Square"])
def test_a_prompt_for_a_button_that_takes_none(button: str) -> None:
    assert check_prompt(button, "a fox", True, FACTS) == (
        f"`{button}` does not take a prompt: only Custom Zoom does, and with Remix on V1-V4, Vary, the arrows "
        "and 🔄.")


@pytest.mark.parametrize("button", sorted(REMIX_BUTTONS))
def test_remix_buttons_take_a_prompt_when_remix_is_on_or_unknown(button: str) -> None:
    # Unknown: the bot has not heard Midjourney say; the prompt goes, rather than refusing what may work.
    assert check_prompt(button, "a fox in the snow", True, FACTS) is None
    assert check_prompt(button, "a fox in the snow", None, FACTS) is None


def test_a_remix_prompt_while_the_accounts_remix_is_off() -> None:
    assert check_prompt("V2", "a fox in the snow", False, FACTS) == (
        "The Midjourney account's Remix mode is off, so Midjourney would ignore a prompt for `V2`. An admin can "
        "turn it on with `/relay remix on`.")


def test_an_empty_or_too_long_remix_prompt() -> None:
    assert check_prompt("V1", "  ", True, FACTS) == "The prompt is empty."
    assert check_prompt("⬅️", "x" * 3000, True, FACTS) == "The prompt is 3000 characters; useapi accepts at most 2048."
