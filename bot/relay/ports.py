"""What the relay needs from the Discord side, and what it hands over: the `Publisher` port and its cards.

The relay decides what a card shows (state, note, place, media, used buttons); the publisher only turns a
card into Discord messages. It never reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.jobs import JobRecord
from bot.media import MediaFile


@dataclass(frozen=True, slots=True)
class Shown:
    """Where a job's final state ended up in Discord."""

    message_id: int | None
    image_url: str | None = None
    extra_message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FinalCard:
    """A finished job as its card shows it."""

    job: JobRecord
    file: MediaFile | None = None  # the result, fetched and made to fit the channel
    link: str | None = None  # the result's link, where it could not be uploaded
    note: str | None = None
    used: frozenset[str] = field(default_factory=frozenset)  # one-shot buttons already used, shown as such


class PublishError(Exception):
    """Discord would not take the message now; the relay tries again later.

    `refused` when Discord said no for good (the bot may not post there): a few more tries, then the job is
    marked undelivered rather than retried forever.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class MessageGone(PublishError):
    """The job's message no longer exists (a moderator deleted it); the relay posts a new one first."""


class Publisher(Protocol):
    """What the relay needs from the Discord side."""

    async def upload_limit(self, guild_id: int) -> int:
        """The largest file the bot may upload in this server (asked of Discord where the gateway's cache has no
        server: a process standing by)."""
        ...

    async def show_pending(self, job: JobRecord, note: str | None, place: int | None) -> int | None:
        """Create or edit the job's working message (a queued one with its place in line); return its id
        (None if the channel is gone)."""
        ...

    async def show_final(self, card: FinalCard) -> Shown:
        """Create or edit the job's message into its result or failure card."""
        ...

    async def redraw_buttons(self, job: JobRecord, used: frozenset[str]) -> None:
        """Re-draw a result's buttons so the one-shot ones already used show as used, as Midjourney does."""
        ...

    async def copy_to_gallery(self, card: FinalCard, channel_id: int, shown: Shown) -> int | None:
        """Copy a finished upscale to a gallery channel; the copy's message id, or None if Discord refused."""
        ...

    async def delete_messages(self, job: JobRecord, gallery_channel_id: int | None) -> int:
        """Delete the job's card, extra button pages and gallery copy; how many were deleted."""
        ...

    async def notify(self, job: JobRecord, text: str, admin_text: str | None = None) -> None:
        """Tell the person who started the job, privately, while Discord still lets us (admins: admin_text)."""
        ...

    async def alert_admins(self, guild_id: int | None, admin_channel_id: int | None, text: str) -> None:
        """Tell a server's admins about an account-wide problem (in their alert channel, else the owner by DM)."""
        ...
