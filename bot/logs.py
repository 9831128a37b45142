"""Logging set-up: one line per event, levelled, with every secret masked by one filter."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

MASK = "***"


class SecretMasker(logging.Filter):
    """Replaces every known secret in a record's final text, whoever logged it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        # Very short values would mask ordinary words; real tokens and secrets are long.
        self._secrets.extend(s for s in secrets if len(s) >= 6 and s not in self._secrets)
        self._secrets.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if masked != message:
            record.msg, record.args = masked, None
        return True


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
    logging.getLogger("discord.gateway").setLevel(max(root.level, logging.INFO))
    return masker
