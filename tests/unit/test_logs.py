"""Secrets kept out of logs and stored bodies: every way a secret can be written down is masked."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Callable
from typing import Any

from bot.logs import MASK, SecretMasker, mask_body, setup_logging

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


def json_lines(secrets: list[str], log: Callable[[logging.Logger], None]) -> list[dict[str, Any]]:
    """What `setup_logging(..., "json")` writes for the records `log` makes, parsed line by line."""
    stream = io.StringIO()
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        setup_logging("DEBUG", secrets, "json", stream=stream)
        log(logging.getLogger("bot.tests.json"))
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)
        logging.captureWarnings(False)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_logs_are_one_object_per_line_with_the_fields_named() -> None:
    def log(logger: logging.Logger) -> None:
        logger.info("job %d done\nsecond line of the message", 12)

    (entry,) = json_lines([], log)
    assert entry["level"] == "INFO" and entry["logger"] == "bot.tests.json"
    assert entry["message"] == "job 12 done\nsecond line of the message"
    assert datetime.datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert "exc_info" not in entry


def test_json_logs_carry_the_traceback_as_text_masked_like_the_text_format() -> None:
    def log(logger: logging.Logger) -> None:
        logger.warning("calling https://relay/callbacks/useapi/%s/1", TOKEN)
        try:
            raise RuntimeError(f"refused {TOKEN}")
        except RuntimeError:
            logger.exception("failed with %s", TOKEN)

    calling, failed = json_lines([TOKEN], log)
    assert calling["message"] == "calling https://relay/callbacks/useapi/***/1"
    assert failed["message"] == "failed with ***"
    assert failed["exc_info"].startswith("Traceback (most recent call last):")
    assert failed["exc_info"].endswith("RuntimeError: refused ***")
    assert TOKEN not in json.dumps([calling, failed])
