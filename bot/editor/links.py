"""The region editor's links: an unguessable token per (member, job), valid 15 minutes, spent by one submit.

The page needs no login, so possessing the token is the member's proof: the relay hands it only in the
member's private reply to their own Vary (Region) click, and the token (256 random bits) cannot be guessed.
Opening the page, or a link preview fetching it, reads a link and never spends it; only a submit spends it,
through `LinkStore.spend`, which is atomic so that a replay racing the first submit loses.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

__all__ = [
    "LIFETIME",
    "EditorLink",
    "LinkStore",
    "MemoryLinks",
    "Refusal",
    "check",
    "looks_like_token",
    "new_link",
]

LIFETIME = timedelta(minutes=15)
# 32 bytes: 256 bits from the OS's CSPRNG, 43 URL-safe characters.
TOKEN_BYTES = 32
# Anything else in the token's place was not made here: refused before any store is asked.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class Refusal(Enum):
    """Why a link cannot be used, as the sentence the page shows."""

    INVALID = "This link is not valid. Open the editor again from the Vary (Region) button in Discord."
    EXPIRED = ("This link expired: links to the editor last 15 minutes. Press Vary (Region) again in Discord "
               "for a new one.")
    USED = ("This link has been used: the region was sent already, and a link sends only once. Press "
            "Vary (Region) again in Discord to redraw another region.")

    @property
    def sentence(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class EditorLink:
    """One member's link to the editor for one job. Times are timezone-aware (UTC)."""

    token: str
    job_id: str
    member_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


def looks_like_token(token: str) -> bool:
    """Whether `token` has the shape of one `new_link` makes (a cheap filter before the store is asked)."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


def new_link(job_id: str, member_id: int, now: datetime) -> EditorLink:
    """A fresh link for `member_id` to edit `job_id`, valid from `now` for `LIFETIME`."""
    if now.tzinfo is None:
        # A naive time compared with the store's aware ones raises later, far from the mistake.
        raise ValueError("now must be timezone-aware")
    return EditorLink(token=secrets.token_urlsafe(TOKEN_BYTES), job_id=job_id, member_id=member_id,
                      created_at=now, expires_at=now + LIFETIME)


def check(link: EditorLink | None, now: datetime) -> Refusal | None:
    """Why `link` (None: no link has that token) cannot be used at `now`, or None when it can.

    A used link says so even once it has also expired: "used" tells the member what happened to it.
    """
    if link is None:
        return Refusal.INVALID
    if link.used_at is not None:
        return Refusal.USED
    if now >= link.expires_at:
        return Refusal.EXPIRED
    return None


class LinkStore(Protocol):
    """Where links live. The relay's database implements it, so that any of several processes serves a page."""

    async def create(self, link: EditorLink) -> None:
        """Keep a new link (its token is new: `new_link` made it)."""

    async def get(self, token: str) -> EditorLink | None:
        """The link with this token, used or not, expired or not; None when there is none."""

    async def spend(self, token: str, now: datetime) -> bool:
        """Mark the link used at `now` if it is unused and unexpired, atomically; whether THIS call spent it.

        Two calls racing for one link: exactly one returns True. In SQL, one statement does it:
        `UPDATE editor_links SET used_at = :now WHERE token = :token AND used_at IS NULL AND expires_at > :now`,
        True when it changed a row.
        """


class MemoryLinks:
    """A `LinkStore` in one process's memory, for tests and a local try; the database's replaces it in the bot.

    Atomic because `spend` never awaits between reading and writing: the event loop runs it in one go.
    """

    def __init__(self) -> None:
        self._links: dict[str, EditorLink] = {}

    async def create(self, link: EditorLink) -> None:
        if link.token in self._links:
            raise ValueError("a link with this token exists already")
        self._links[link.token] = link

    async def get(self, token: str) -> EditorLink | None:
        return self._links.get(token)

    async def spend(self, token: str, now: datetime) -> bool:
        link = self._links.get(token)
        if link is None or link.used_at is not None or now >= link.expires_at:
            return False
        self._links[token] = replace(link, used_at=now)
        return True
