"""Logging set-up: one line per event (text, or a JSON object), levelled, with every secret masked by one filter."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote

MASK = "***"
# Very short values would mask ordinary words; real tokens and secrets are long.
MIN_SECRET_LENGTH = 6


class SecretMasker(logging.Filter):
    """Replaces every known secret in a record's final text, whoever logged it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            # A secret can also be logged inside a URL, percent-encoded.
            for form in (secret, quote(secret, safe="")):
                if form not in self._secrets:
                    self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A malformed call (wrong number of args) must still be masked, and must not break the caller.
            message = f"{record.msg} {record.args!r}"
        masked = self.mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        if masked != message or record.args:
            # The text is final from here: handlers format what the filter saw, masked.
            record.msg, record.args = masked, None
        return True


def mask_body(data: Any, secret: str) -> Any:
    """A copy of a JSON body with `secret` taken out of every string in it (a callback URL a backend echoes
    back carries the callback secret), fit to store or log."""
    if not secret:
        return data
    if isinstance(data, str):
        return data.replace(secret, MASK) if secret in data else data
    if isinstance(data, dict):
        return {key: mask_body(value, secret) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_body(value, secret) for value in data]
    return data


# Libraries that log whole payloads at DEBUG: discord.gateway its frames (the IDENTIFY carries the token),
# aiosqlite every statement with its parameters (the callback secret as it is first stored, every prompt).
CHATTY_LOGGERS = ("discord.gateway", "aiosqlite")


def quiet_chatty_loggers(level: int) -> None:
    """Keep the loggers that dump payloads at INFO or above, whatever LOG_LEVEL says."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, and exc_info as text when there is
    one. It formats what the masking filter left, so it masks exactly as the text format does."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        # json.dumps escapes newlines, so a multi-line message or a traceback stays on its line.
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, secrets: Iterable[str], log_format: str = "text",
                  stream: TextIO | None = None) -> SecretMasker:
    """Log to stderr (or `stream`), one line per event in `log_format` (text or json), through a handler that masks
    `secrets`."""
    masker = SecretMasker(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    # On the handler, not a logger: handler filters see records from every library's loggers.
    handler.addFilter(masker)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_chatty_loggers(root.level)
    # Python's warnings (unclosed sessions and the like) go through the same masked handler.
    logging.captureWarnings(True)
    return masker
