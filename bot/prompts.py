"""Pure checks of what a member typed, against the backend's facts: each returns why it would be refused, or None.

Everything a backend would refuse is checked here first, so a refusal names its reason and costs no call.
"""

from __future__ import annotations

import re

from bot.backends.base import BackendFacts

ZOOM_PARAMETER = re.compile(r"--zoom\s+(\S+)")
# Discord's text input maximum: longer than any backend's, so "too long" gets our reason, not Discord's.
MODAL_TEXT_LIMIT = 4000


def too_long(prompt: str, facts: BackendFacts) -> str | None:
    if len(prompt) > facts.prompt_limit:
        return f"The prompt is {len(prompt)} characters; {facts.label} accepts at most {facts.prompt_limit}."
    return None


def custom_zoom_default(prompt: str) -> str:
    """The parent's prompt with `--zoom 2` in place of any zoom it had."""
    return f"{ZOOM_PARAMETER.sub('', prompt).strip()} --zoom 2"


def check_custom_zoom(prompt: str, facts: BackendFacts) -> str | None:
    """Why a Custom Zoom prompt would be refused, or None when it is fine."""
    if not prompt.strip():
        return "The prompt is empty."
    if (problem := too_long(prompt, facts)) is not None:
        return problem
    zooms = ZOOM_PARAMETER.findall(prompt)
    if len(zooms) != 1:
        return "Custom Zoom needs exactly one `--zoom` value between 1 and 2, e.g. `--zoom 1.5`."
    try:
        value = float(zooms[0])
    except ValueError:
        return f"`--zoom {zooms[0]}` is not a number: use a value between 1 and 2."
    if not 1.0 <= value <= 2.0:
        return f"`--zoom {zooms[0]}` is out of range: use a value between 1 and 2."
    return None


def check_prompt(button: str, prompt: str | None, account_remix_on: bool | None, facts: BackendFacts) -> str | None:
    """Why `prompt` may not go with `button`, or None. None for prompt means "no prompt given"."""
    if button in facts.needs_prompt:
        if prompt is None:
            return f"{button} needs a prompt with `--zoom` between 1 and 2, e.g. the job's prompt and `--zoom 2`."
        return check_custom_zoom(prompt, facts)
    if prompt is None:
        return None
    if button not in facts.remix_prompt:
        return (f"`{button}` does not take a prompt: only Custom Zoom does, and with Remix on V1-V4, Vary, "
                "the arrows and 🔄.")
    if not prompt.strip():
        return "The prompt is empty."
    if (problem := too_long(prompt, facts)) is not None:
        return problem
    if account_remix_on is False:
        return (f"The Midjourney account's Remix mode is off, so Midjourney would ignore a prompt for `{button}`. "
                "An admin can turn it on with `/relay remix on`.")
    return None
