"""The relay's domain model: where a job stands, what it made, and a team's settings. No I/O here.

Every other part speaks these records: the store reads and writes them, the relay moves them between
states, the backends fill in their buttons and media, the Discord side shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

# Local job states. 'queued' waits for a Midjourney slot, 'submitting' has a backend call in flight,
# 'running' is accepted by the backend; the rest are final.
QUEUED: Final = "queued"
SUBMITTING: Final = "submitting"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
MODERATED: Final = "moderated"
CANCELLED: Final = "cancelled"
DUPLICATE: Final = "duplicate"  # a one-shot button already used: the card points at the existing result
FINAL_STATES: Final = frozenset({COMPLETED, FAILED, MODERATED, CANCELLED, DUPLICATE})
ACTIVE_STATES: Final = frozenset({SUBMITTING, RUNNING})  # holding a Midjourney slot
UNFINISHED_STATES: Final = frozenset({QUEUED, SUBMITTING, RUNNING})
# A job in one of these never made anything: its one-shot button may be pressed again.
FRUITLESS_STATES: Final = frozenset({FAILED, MODERATED, CANCELLED, DUPLICATE})
ALL_STATES: Final = (QUEUED, SUBMITTING, RUNNING, COMPLETED, FAILED, MODERATED, CANCELLED, DUPLICATE)
# The not_before of a job filed with images while they are being kept: the scheduler never picks it until it
# is released (a job must never go out without the images it was asked with).
HELD: Final = 1e12


class ErrorKind(StrEnum):
    """Why a job or a call failed, in the relay's words: each backend maps its own answers onto these.

    The relay decides retries and pauses from the kind alone; `bot.messages` words each kind for people;
    the store keeps the kind of every failed job (its history feeds `/relay status`).
    """

    BAD_REQUEST = "bad_request"  # the request was wrong (a field, a button): refused, not retried
    UNAUTHORISED = "unauthorised"  # the backend refused the bot's token
    NO_SUBSCRIPTION = "no_subscription"  # the account has no (paid) subscription
    NOT_FOUND = "not_found"  # the backend does not know the job
    ALREADY_DONE = "already_done"  # a one-shot button was already used; the error names the existing job
    MODERATED = "moderated"  # Midjourney (or the backend's word list) refused the prompt
    BUSY = "busy"  # slots full or rate-limited: retry after a while
    UNTRACKABLE = "untrackable"  # Midjourney queued the job where the backend cannot follow it
    NEEDS_HUMAN = "needs_human"  # the account waits for a person (a moderation message, a CAPTCHA)
    UNAVAILABLE = "unavailable"  # no answer, a connection error or a server error
    TIMEOUT = "timeout"  # the call got no answer in time (it may still have been accepted)
    JOB_FAILED = "job_failed"  # the backend ran the job and reported it failed
    TIMED_OUT = "timed_out"  # local: the job stayed unfinished far longer than Midjourney takes
    CANCELLED = "cancelled"  # the job was cancelled (by its owner, or at the backend)
    UNSUPPORTED = "unsupported"  # local: the relay cannot serve this button with this backend (yet)


# Failures after which a later completion is still shown: Midjourney may finish the job anyway.
LATE_COMPLETION_KINDS: Final = frozenset({ErrorKind.UNTRACKABLE, ErrorKind.TIMED_OUT})

_VIDEO_EXTENSIONS = frozenset({"mp4", "webm", "mov"})
_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif"})


@dataclass(frozen=True, slots=True)
class Button:
    """One button under a finished job, exactly as its backend shows it."""

    name: str  # the label, else the emoji: what a member sees and what the relay's rules look at
    ref: str  # what the backend needs to press it (useapi: the name; mj-proxy: the customId); opaque here

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "ref": self.ref}

    @classmethod
    def from_json(cls, data: Any) -> Button:
        if isinstance(data, str):  # a name alone: the button's own reference (useapi)
            return cls(data, data)
        return cls(str(data["name"]), str(data["ref"]))


@dataclass(frozen=True, slots=True)
class Media:
    """One file a job made: an image or a video, where the backend serves it."""

    url: str
    content_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    filename: str | None = None

    @property
    def kind(self) -> str:
        """'image', 'video' or 'unknown': by content type, else by the file name's extension."""
        if self.content_type:
            major = self.content_type.split("/", 1)[0].strip().lower()
            if major in {"image", "video"}:
                return major
        name = self.filename or urlsplit(self.url).path.rsplit("/", 1)[-1]
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext in _VIDEO_EXTENSIONS:
            return "video"
        if ext in _IMAGE_EXTENSIONS:
            return "image"
        return "unknown"

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in (
            ("url", self.url), ("content_type", self.content_type), ("size", self.size),
            ("width", self.width), ("height", self.height), ("filename", self.filename),
        ) if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Media:
        return cls(url=str(data["url"]), content_type=data.get("content_type"), size=data.get("size"),
                   width=data.get("width"), height=data.get("height"), filename=data.get("filename"))


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as the rest of the relay sees it."""

    id: int
    ref: str  # the relay's reference at the backend (replyRef / state): the database identity and the id
    guild_id: int
    channel_id: int
    owner_id: int
    parent_id: int | None
    button: str | None  # the name of the button that made this job
    button_ref: str | None  # that button's backend reference, taken from the parent when it was clicked
    prompt: str
    button_prompt: str | None
    backend: str  # the backend this job was sent to ('useapi', 'mjproxy')
    backend_job_id: str | None
    status: str
    progress: int | None
    buttons: tuple[Button, ...]
    media: tuple[Media, ...]
    preview_url: str | None
    done_buttons: tuple[str, ...]  # one-shot buttons the backend says were already used on this job
    job_json: dict[str, Any] | None  # the backend's own body, secrets masked: for people debugging
    message_id: int | None
    extra_message_ids: tuple[int, ...]
    image_url: str | None  # the uploaded result's link in Discord
    gallery_message_id: int | None
    published: bool
    publish_failures: int  # times Discord refused to show the final card (no permission in the channel)
    undelivered: str | None  # why the result could not be posted at all; /jobs shows it, /job shows it anyway
    error: str | None
    error_kind: ErrorKind | None
    duplicate_of: int | None
    attempts: int
    not_before: float
    simulated: bool
    created_at: float
    updated_at: float
    submitted_at: float | None
    last_event_at: float | None
    finished_at: float | None
    # The command that started a job without a parent: 'imagine', 'describe' or 'blend' (a press's is its root's).
    action: str = "imagine"
    dimensions: str | None = None  # a blend's: portrait, square or landscape
    prompts: tuple[str, ...] = ()  # a finished describe's: the prompts Midjourney suggests, in its order
    seed: str | None = None  # the finished grid's seed, once a member asked for it
    # The process that follows the job (its key, random per start), while the job needs one: see bot.store.claims.
    claimed_by: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def kind(self) -> str:
        return "button" if self.parent_id is not None else self.action

    @property
    def result(self) -> Media | None:
        """The media the result card shows: the first video, else the first image, else the first file."""
        for wanted in ("video", "image"):
            for item in self.media:
                if item.kind == wanted:
                    return item
        return self.media[0] if self.media else None

    def button_named(self, name: str) -> Button | None:
        return next((button for button in self.buttons if button.name == name), None)


@dataclass(frozen=True, slots=True)
class KeptImage:
    """An image a member gave with a job (an image prompt, a blend's, the one to describe), kept by the relay:
    Discord's attachment links expire, and a job may wait in the queue or across a restart."""

    job_id: int
    position: int  # its place among the job's images, from 0
    content_type: str
    data: bytes
    token: str  # the unguessable name the listener serves it under, for backends that fetch links
    kept_at: float


@dataclass(frozen=True, slots=True)
class OneUseLink:
    """A link made for one member and one job (the region editor's), valid until `expires_at`, spent once."""

    token: str
    job_id: int
    member_id: int
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True, slots=True)
class JobBrief:
    """The few columns of a job that the queue order and non-final edits need (no JSON to decode)."""

    id: int
    owner_id: int
    channel_id: int
    message_id: int | None
    error: str | None
    status: str = QUEUED
    claimed_by: int | None = None  # the process that shows it (bot.store.claims)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """One server's choices: who may click whose buttons, where alerts and the gallery go, its limits."""

    guild_id: int
    policy: str = "owner"  # 'owner', 'role' (owner plus policy_role_id) or 'everyone'
    policy_role_id: int | None = None
    gallery_channel_id: int | None = None
    admin_channel_id: int | None = None
    daily_quota: int | None = None  # None: the USER_DAILY_QUOTA setting
    queue_limit: int | None = None  # None: the USER_MAX_QUEUED setting
    speed: str | None = None  # 'fast', 'relax' or 'turbo' once an admin chose one; None: the backend's own


@dataclass(frozen=True, slots=True)
class MemberLimits:
    """An admin's override of the server's limits for one member (None: the server's default)."""

    guild_id: int
    user_id: int
    daily_quota: int | None = None
    queue_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """Submissions stopped because the account needs a human (useapi's 596); kept across restarts."""

    reason: str
    channel: str | None = None  # the backend's account the pause is about, when it named one


@dataclass(frozen=True, slots=True)
class OutageState:
    """The relay-wide backoff from a backend that does not answer: since when, which round, until when to wait."""

    since: float | None = None  # None: the backend answers
    round: int = 0
    retry_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SharedState:
    """What every process sharing a database reads before it decides: the pause, the reduced concurrency after
    an untrackable job, and the outage backoff."""

    pause: Pause | None = None
    reduced_until: float = 0.0
    outage: OutageState = OutageState()


@dataclass(frozen=True, slots=True)
class Notice:
    """The interaction that made a job, kept so that any process can tell its owner something privately while
    Discord still takes follow-ups for it (15 minutes)."""

    job_id: int
    token: str
    admin: bool  # the clicker could manage the server: admin wording
    expires_at: float
