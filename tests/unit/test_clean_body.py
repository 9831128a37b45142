"""The raw-text shortcut of the callback's character check agrees with the full walk, whatever the body."""

from __future__ import annotations

import json
import random

from bot.webhook import clean_body, clean_text, may_be_unusable

PIECES = ["a", "é", "🦊", "\n", "\t", "\r", "\\", "\"", "u", "b", "f", "\x7f", "\x00", "\x08", "\x0b", "\x0c",
          "\x1f", "\ud800", "\udfff", "\u2028"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 6)))


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.randrange(-5, 5)
    if kind == 2:
        return rng.choice([None, True, 1.5])
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randrange(3))}


def test_the_shortcut_agrees_with_the_walk_on_random_bodies() -> None:
    rng = random.Random(20261202)
    for _ in range(5000):
        body = {_text(rng): _value(rng) for _ in range(rng.randrange(1, 4))}
        for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")):
            try:
                parsed = json.loads(raw)
            except (UnicodeDecodeError, ValueError):
                continue  # a raw surrogate is not UTF-8: refused before the check
            assert clean_body(raw, parsed) == clean_text(parsed), raw


def test_a_plain_callback_is_clean_without_a_walk_and_an_escaped_one_is_walked() -> None:
    assert clean_body(b'{"status": "completed", "content": "a fox\\n"}', {"status": "completed"})
    assert not clean_body(b'{"content": "\\ud800"}', {"content": "\ud800"})
    assert not clean_body(b'{"content": "\x7f"}', {"content": "\x7f"})
    assert clean_body(b'{"content": "\\u00e9"}', {"content": "\u00e9"})


def test_harmless_escapes_take_the_shortcut() -> None:
    # Serializers that escape every non-ASCII character (Python's json.dumps, by default) write "…" as \u2026:
    # such a body must not cost a walk on every progress callback.
    raw = json.dumps({"discord": "abc…xyz", "prompt": "un renard roux à l'aube", "content": "a\tb\nc"}).encode()
    assert b"\\u2026" in raw
    assert not may_be_unusable(raw)
    for unusable in ("\x00", "\x1f", "\x7f", "\ud800", "\udfff", "\b", "\f"):
        for raw in (json.dumps({"k": unusable}).encode(),
                    json.dumps({"k": unusable}, ensure_ascii=False).encode("utf-8", "surrogatepass")):
            assert may_be_unusable(raw), raw
