"""What the page submits, checked: the body `{"prompt": str, "mask": "data:image/png;base64,..."}`.

Pure (no I/O): the routes read the body and run this in a worker thread, since decoding a large mask takes a
while and must not hold the event loop.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.editor.mask import MaskError, decode_mask

__all__ = ["DEFAULT_MAX_PROMPT", "BadSubmission", "Submission", "parse_submission"]

# A Vary (Region) prompt goes through Discord's modal text input on Midjourney's side, which holds 4000.
DEFAULT_MAX_PROMPT = 4000
# Control characters (but tab and line breaks) and lone surrogates (JSON's "\ud800" decodes to one) could be
# neither stored nor shown.
_UNUSABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class BadSubmission(ValueError):
    """A body that cannot be sent; its message is the sentence for the member (answered 400)."""


@dataclass(frozen=True, slots=True)
class Submission:
    prompt: str
    mask_png: bytes


def _object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadSubmission("The request is not JSON.") from None
    if not isinstance(value, dict):
        raise BadSubmission('The request must be a JSON object: {"prompt": ..., "mask": ...}.')
    return value


def _prompt(value: Any, fallback: str, max_prompt: int) -> str:
    if value is None:
        return fallback
    if not isinstance(value, str):
        raise BadSubmission("The prompt must be text.")
    prompt = " ".join(value.split())  # Midjourney reads one line; the textarea may wrap it into several
    if _UNUSABLE.search(prompt):
        raise BadSubmission("The prompt holds characters that cannot be sent.")
    if len(prompt) > max_prompt:
        raise BadSubmission(f"The prompt is {len(prompt)} characters; at most {max_prompt} can be sent.")
    # An emptied prompt means "as it was", as in Midjourney's own editor.
    return prompt or fallback


def parse_submission(body: bytes, *, width: int, height: int, original_prompt: str,
                     max_prompt: int = DEFAULT_MAX_PROMPT) -> Submission:
    """The prompt and mask PNG of a submit body for an original of `width` x `height`; BadSubmission otherwise.

    A missing or emptied prompt is the original's prompt.
    """
    fields = _object(body)
    mask = fields.get("mask")
    if not isinstance(mask, str):
        raise BadSubmission("The request carries no mask.")
    prompt = _prompt(fields.get("prompt"), original_prompt, max_prompt)
    try:
        mask_png = decode_mask(mask, width, height)
    except MaskError as exc:
        raise BadSubmission(str(exc)) from None
    return Submission(prompt=prompt, mask_png=mask_png)
