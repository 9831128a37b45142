"""Midjourney's own words, read the same way behind every backend: the prompts a /describe suggests, the seed
its reply to a seed request names.

Both backends pass Midjourney's message text on as Midjourney wrote it (useapi in a job's embeds or content,
mj-proxy in a task's `properties.finalPrompt`), so reading that text is done once, here. Pure functions.
"""

from __future__ import annotations

import re

__all__ = ["described_prompts", "seed_in"]

# Midjourney numbers a describe's prompts with keycap emoji ("1️⃣": the digit, an optional VS16, U+20E3) at the
# start of a line, a blank line between them.
_NUMBERED = re.compile(r"(?:^|\n)[ \t]*[1-9]\ufe0f?\u20e3[ \t]*")
# "**seed** 1783912300" in Midjourney's seed reply, or a prompt's own "--seed 42": a word, then the digits.
_SEED = re.compile(r"\bseed\b[*_:\s]{0,6}(\d{1,20})\b", re.IGNORECASE)


def described_prompts(text: str | None) -> tuple[str, ...]:
    """The prompts of a describe's text, in Midjourney's order, each without its "1️⃣ " numbering.

    Midjourney's own text is "1️⃣ a cat ...\\n\\n2️⃣ ..."; a text without the numbering (trueai joins the
    prompts of its non-Discord accounts with line breaks) is split into its non-empty lines. Everything else
    of Midjourney's text is kept as it is, surrounding whitespace aside.
    """
    if not text:
        return ()
    text = text.replace("\r\n", "\n")
    marks = list(_NUMBERED.finditer(text))
    if marks:
        ends = [mark.start() for mark in marks[1:]] + [len(text)]
        parts = [text[mark.end() : end] for mark, end in zip(marks, ends, strict=True)]
    else:
        parts = text.split("\n")
    return tuple(part.strip() for part in parts if part.strip())


def seed_in(*texts: str | None) -> str | None:
    """The seed Midjourney names in these texts (its reply's content, its embeds), as digits; None without one.

    The last one named wins: Midjourney's reply may repeat the prompt (with a `--seed` of its own) before the
    line that gives the job's seed, and both are the same number when the prompt set one.
    """
    found: str | None = None
    for text in texts:
        for match in _SEED.finditer(text or ""):
            found = match.group(1)
    return found
