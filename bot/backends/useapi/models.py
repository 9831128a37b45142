"""useapi.net v2 response models that keep every field they do not know."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["AccountChannel", "Attachment", "Child", "Job"]

# Midjourney reports progress only inside the message text, e.g. "**cat** - <@1308> (42%) (fast)".
_PROGRESS = re.compile(r"\((\d{1,3})%\)")


class _Tolerant(BaseModel):
    # useapi adds fields without notice: rejecting them would break the relay on a deploy of theirs.
    model_config = ConfigDict(extra="allow")


class Attachment(_Tolerant):
    """One file of a job's Discord message."""

    url: str | None = None
    proxy_url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None


class Child(_Tolerant):
    """A job made by clicking a button on another job."""

    button: str | None = None
    jobid: str | None = None
    messageId: str | None = None


class Job(_Tolerant):
    """A useapi job as GET jobs/?jobid= and the callbacks return it."""

    FINAL_STATUSES: ClassVar[frozenset[str]] = frozenset({"completed", "failed", "moderated", "cancelled"})

    jobid: str
    verb: str | None = None
    status: str | None = None
    created: str | None = None
    updated: str | None = None
    prompt: str | None = None
    describeUrl: str | None = None  # a describe's image
    blendUrls: list[str] = []  # a blend's images, and the shape it was asked for
    blendDimensions: str | None = None
    button: str | None = None
    parentJobId: str | None = None
    buttons: list[str] = []
    children: list[Child] = []
    attachments: list[Attachment] = []
    embeds: list[dict[str, Any]] = []
    content: str | None = None
    discord: str | None = None
    channel: str | None = None
    server: str | None = None
    maxJobs: int | None = None
    messageId: str | None = None
    timestamp: str | None = None
    replyUrl: str | None = None
    replyRef: str | None = None
    error: str | None = None
    errorDetails: str | None = None
    executingJobs: list[str] | None = None
    code: int | None = None

    @property
    def is_final(self) -> bool:
        """True once the job will not change any more."""
        return self.status in self.FINAL_STATUSES

    @property
    def progress(self) -> int | None:
        """The "(NN%)" Midjourney puts in the content, or None."""
        return parse_progress(self.content) if self.content else None

    @property
    def image_url(self) -> str | None:
        """The result image: the first attachment, else the first embed's image."""
        if self.attachments and self.attachments[0].url:
            return self.attachments[0].url
        if self.embeds:
            image = self.embeds[0].get("image")
            if isinstance(image, dict) and isinstance(image.get("url"), str):
                url: str = image["url"]
                return url
        return None


class AccountChannel(_Tolerant):
    """One configured Midjourney account of GET account/midjourney."""

    discord: str | None = None
    server: str | None = None
    channel: str | None = None
    maxJobs: int | None = None
    pendingModMessage: str | None = None


def parse_progress(content: str) -> int | None:
    """The "(NN%)" Midjourney puts in a message's content, or None."""
    match = _PROGRESS.search(content)
    return int(match.group(1)) if match else None
