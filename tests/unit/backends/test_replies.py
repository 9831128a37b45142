"""Midjourney's describe and seed texts, read the same behind every backend."""

from __future__ import annotations

import pytest

from bot.backends.replies import described_prompts, seed_in

# A describe as Midjourney posts it: keycap numbers, a blank line between, parameters kept.
DESCRIBED = (
    "1️⃣ a lighthouse on a rocky shore at dusk, in the style of soft watercolour, muted teal and amber --ar 3:2\n\n"
    "2️⃣ an old lighthouse under a stormy sky, dramatic light, 35mm photograph --ar 3:2\n\n"
    "3️⃣ lighthouse, seagulls, evening, oil painting by the sea --ar 3:2\n\n"
    "4️⃣ a lonely tower of light over dark waves, cinematic, moody --ar 3:2"
)


def test_the_four_numbered_prompts_lose_only_their_numbers() -> None:
    assert described_prompts(DESCRIBED) == (
        "a lighthouse on a rocky shore at dusk, in the style of soft watercolour, muted teal and amber --ar 3:2",
        "an old lighthouse under a stormy sky, dramatic light, 35mm photograph --ar 3:2",
        "lighthouse, seagulls, evening, oil painting by the sea --ar 3:2",
        "a lonely tower of light over dark waves, cinematic, moody --ar 3:2",
    )


@pytest.mark.parametrize("text", [
    DESCRIBED.replace("\n\n", "\r\n\r\n"),  # Windows line ends, as trueai writes some
    DESCRIBED.replace("\ufe0f", ""),  # keycaps without the variation selector
    "  " + DESCRIBED.replace("\n\n", "\n") + "\n",
])
def test_line_ends_and_keycap_forms_do_not_matter(text: str) -> None:
    assert len(described_prompts(text)) == 4
    assert described_prompts(text)[3] == "a lonely tower of light over dark waves, cinematic, moody --ar 3:2"


def test_a_number_inside_a_prompt_is_kept() -> None:
    assert described_prompts("1️⃣ 2 cats, 3️ dogs\n\n2️⃣ a 4⃣ sign") == ("2 cats, 3️ dogs", "a 4⃣ sign")


def test_unnumbered_prompts_are_its_lines() -> None:
    assert described_prompts("a cat\r\n\r\na dog\nan owl") == ("a cat", "a dog", "an owl")


@pytest.mark.parametrize("text", [None, "", "  \n\n "])
def test_nothing_gives_no_prompts(text: str | None) -> None:
    assert described_prompts(text) == ()


@pytest.mark.parametrize(("texts", "seed"), [
    (("**a cat** - <@1308> (fast)\n**Job ID**: 6f6c0b6e\n**seed** 1783912300",), "1783912300"),
    (("", "Job ID: 6f6c\nseed 42"), "42"),  # in an embed
    (("**a cat --seed 7** - <@1308>\n**seed** 7",), "7"),
    (("**a cat --seed 7**", "**seed** 99"), "99"),  # the reply's line, after the prompt's own
    (("Seed: 5",), "5"),
    (("no number here", None, "seedless 12"), None),
    ((), None),
])
def test_the_seed_is_the_digits_after_the_word(texts: tuple[str | None, ...], seed: str | None) -> None:
    assert seed_in(*texts) == seed
