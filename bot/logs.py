"""Logging set-up: one line per event, levelled, with every secret masked by one filter."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any
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


def setup_logging(level: str, secrets: Iterable[str]) -> SecretMasker:
    """Log to stderr, one line per event, through a handler that masks `secrets`."""
    masker = SecretMasker(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: handler filters see records from every library's loggers.
    handler.addFilter(masker)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_chatty_loggers(root.level)
    # Python's warnings (unclosed sessions and the like) go through the same masked handler.
    logging.captureWarnings(True)
    return masker
