"""Secrets kept out of logs and stored bodies: every way a secret can be written down is masked."""

from __future__ import annotations

import logging
from typing import Any

from bot.logs import MASK, SecretMasker, mask_body

TOKEN = "user:1234-abcDEF/ghi+jk="  # characters that URL encoding changes


def test_a_secret_is_masked_wherever_it_is_in_the_text() -> None:
    masker = SecretMasker([TOKEN])
    assert masker.mask(f"Authorization: Bearer {TOKEN} (twice: {TOKEN})") == "Authorization: Bearer *** (twice: ***)"


def test_a_percent_encoded_secret_is_masked_too() -> None:
    # A callback URL or query string carries the secret URL-encoded.
    masker = SecretMasker([TOKEN])
    assert masker.mask("GET /cb?token=user%3A1234-abcDEF%2Fghi%2Bjk%3D") == "GET /cb?token=***"


def test_short_values_are_not_secrets() -> None:
    # Masking "abc" or an empty setting would blank out ordinary words all over the log.
    masker = SecretMasker(["", "abc", "12345"])
    assert masker.mask("abc 12345 abcdef") == "abc 12345 abcdef"


def test_a_longer_secret_is_masked_whole_even_when_it_contains_a_shorter_one() -> None:
    masker = SecretMasker(["secret", "secret-and-more"])
    assert masker.mask("secret-and-more") == MASK


def test_secrets_added_later_are_masked() -> None:
    masker = SecretMasker()
    masker.add("webhook-secret-123")
    assert masker.mask("/callbacks/useapi/webhook-secret-123/12") == "/callbacks/useapi/***/12"


def test_the_filter_masks_the_formatted_message_and_keeps_the_record() -> None:
    masker = SecretMasker([TOKEN])
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "calling with %s", (TOKEN,), None)
    assert masker.filter(record)
    assert record.getMessage() == "calling with ***"


def test_the_filter_masks_a_malformed_call_rather_than_failing() -> None:
    masker = SecretMasker([TOKEN])
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "no placeholders", (TOKEN,), None)
    assert masker.filter(record)
    assert TOKEN not in record.getMessage()


def test_mask_body_reaches_into_nested_dicts_and_lists() -> None:
    body: dict[str, Any] = {
        "replyUrl": "https://relay/callbacks/useapi/s3cr3t-value/12",
        "children": [{"note": "s3cr3t-value"}, ["deeper s3cr3t-value"]],
        "code": 200, "ok": True, "none": None, "ratio": 1.5,
    }
    assert mask_body(body, "s3cr3t-value") == {
        "replyUrl": "https://relay/callbacks/useapi/***/12",
        "children": [{"note": "***"}, ["deeper ***"]],
        "code": 200, "ok": True, "none": None, "ratio": 1.5,
    }
    assert body["replyUrl"] == "https://relay/callbacks/useapi/s3cr3t-value/12"  # a copy: the original is untouched


def test_mask_body_without_a_secret_changes_nothing() -> None:
    body = {"replyUrl": "https://relay/cb"}
    assert mask_body(body, "") is body
