"""The seam between the relay and a Midjourney backend, in the relay's own vocabulary.

The relay alone talks to a `Backend`. A backend turns these calls into its own wire format (useapi v2's
jobs, mj-proxy's tasks), its answers into `JobUpdate`s, and every failure into one `BackendError` whose
`kind` (an `ErrorKind`) is all the relay decides on: retries, pauses and the words people read never
depend on an HTTP number. A backend knows nothing of Discord, the store or the relay.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from bot.jobs import Button, ErrorKind, Media

__all__ = [
    "DIMENSIONS",
    "SPEEDS",
    "AccountInfo",
    "Backend",
    "BackendError",
    "BackendFacts",
    "BackendStatus",
    "Button",
    "CallbackHint",
    "ErrorKind",
    "ImagePrompt",
    "JobUpdate",
    "Media",
]


class BackendStatus(StrEnum):
    """Where a job stands at its backend."""

    QUEUED = "queued"  # accepted, waiting in the backend's (or Midjourney's) own queue
    AWAITING_PROMPT = "awaiting_prompt"  # a press's first step: the job waits for its prompt (`give_prompt`)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    MODERATED = "moderated"  # refused by Midjourney's moderation
    CANCELLED = "cancelled"


FINAL_BACKEND_STATUSES = frozenset({BackendStatus.DONE, BackendStatus.FAILED, BackendStatus.MODERATED,
                                    BackendStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """What a backend says of one job now: read on demand, or the answer to a submission."""

    job_id: str
    status: BackendStatus
    progress: int | None = None  # percent
    preview_url: str | None = None  # a picture of the job while it runs, where the backend gives one
    media: tuple[Media, ...] = ()
    buttons: tuple[Button, ...] = ()
    done_buttons: tuple[str, ...] = ()  # one-shot buttons already used on this job, by name
    ref: str | None = None  # the relay's reference, as the backend echoes it back
    callback_url: str | None = None  # the callback URL the backend holds for the job
    prompt: str | None = None
    error: str | None = None  # the backend's (or Midjourney's) words on a failed or moderated job
    queue_position: int | None = None  # jobs ahead of it in the backend's own queue
    prompts: tuple[str, ...] = ()  # a finished describe: the prompts Midjourney suggests, in its order
    created_at: float | None = None  # when the backend made it (Unix time), where it says
    raw: dict[str, Any] = field(default_factory=dict)  # the backend's own body, kept for people debugging

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_BACKEND_STATUSES


@dataclass(frozen=True, slots=True)
class CallbackHint:
    """What a callback body claims, checked for shape only: a hint, re-read from the backend before it is believed."""

    job_id: str
    status: BackendStatus | None = None  # the status it claims, where it names one the relay knows
    progress: int | None = None
    preview_url: str | None = None

    @property
    def final(self) -> bool:
        """It claims a final status."""
        return self.status in FINAL_BACKEND_STATUSES


@dataclass(frozen=True, slots=True)
class ImagePrompt:
    """An image given with a prompt, kept by the relay (Discord's attachment links expire)."""

    data: bytes
    content_type: str
    url: str | None = None  # where the relay serves it, for backends that take links


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """One Midjourney account behind a backend, as far as the backend tells."""

    name: str
    needs_human: str | None = None  # what waits for a person on it (a moderation message), if anything
    max_jobs: int | None = None


class BackendError(Exception):
    """A call that did not succeed, as the relay understands it.

    `detail` keeps the backend's own words (often not fit to show a member as they are); `status` its HTTP
    status or result code, for logs and admins. The other attributes are set for the kinds they belong to.
    """

    def __init__(
        self,
        kind: ErrorKind,
        detail: str = "",
        *,
        status: int | None = None,
        job_id: str | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
        account: str | None = None,
        button: str | None = None,
        offered: str | None = None,
        field_name: str | None = None,
        problem: str | None = None,
        word: str | None = None,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.job_id = job_id  # ALREADY_DONE: the job that button made; UNTRACKABLE: the job marked failed
        self.retry_after = retry_after  # BUSY: the least the backend asks us to wait
        self.rate_limited = rate_limited  # BUSY: a rate limit (Discord's), not full slots
        self.account = account  # NEEDS_HUMAN: the account that waits
        self.button = button  # BAD_REQUEST: the button that was refused
        self.offered = offered  # BAD_REQUEST: the buttons the job offers, as the backend listed them
        self.field_name = field_name  # BAD_REQUEST: the field that was wrong ...
        self.problem = problem  # ... and what was wrong with it
        self.word = word  # MODERATED: the word a backend's list refused
        where = f" {status}" if status is not None else ""
        super().__init__(f"{kind.value}{where}: {detail}" if detail else f"{kind.value}{where}")


@dataclass(frozen=True, slots=True)
class BackendFacts:
    """What a backend is and what it can do, for the rules and the words of the relay."""

    name: str  # in settings, the store and callback paths: 'useapi', 'mjproxy'
    label: str  # in sentences: 'useapi', 'the mj-proxy'
    account: str  # the account in sentences: 'useapi account'
    token_setting: str  # the setting holding its token, for admins
    prompt_limit: int  # the longest prompt it accepts
    ref_limit: int  # the longest reference (replyRef, state) it accepts
    callback_limit: int  # the longest callback URL it accepts
    one_shot: frozenset[str]  # buttons that make at most one job per parent (U1..U4)
    needs_prompt: frozenset[str] = frozenset()  # buttons that cannot go without a prompt (Custom Zoom)
    remix_prompt: frozenset[str] = frozenset()  # buttons that take a prompt while Remix is on
    region: frozenset[str] = frozenset()  # buttons sent with a region the member marks (Vary (Region))
    unsupported: Mapping[str, str] = field(default_factory=dict)  # button → why the relay cannot serve it yet
    retention_days: int | None = None  # how long it keeps jobs, when it says
    token_refused: str = ""  # what else a refused token can mean there, for admins
    images_by_link: bool = False  # it takes the images members give only as links it fetches (else as bytes)
    account_speed: bool = False  # its speed is the Midjourney account's, for every job (else chosen per job)

    @property
    def label_start(self) -> str:
        """The label at the start of a sentence."""
        return self.label[:1].upper() + self.label[1:] if self.label.startswith("the ") else self.label


SPEEDS = ("fast", "relax", "turbo")
DIMENSIONS = ("portrait", "square", "landscape")


class Backend(Protocol):
    """A Midjourney backend, as the relay uses it. Every method raises `BackendError` on failure.

    `speed` (one of SPEEDS, or None for the account's own) goes with every call that starts a job: a backend
    whose speed is per request (mj-proxy's speed bases) uses it; one whose speed is account-wide (useapi) was
    set with `set_speed` and ignores it.
    """

    facts: BackendFacts
    simulated: bool  # True: the embedded simulator, whose results are not from Midjourney

    async def imagine(self, prompt: str, *, ref: str, callback_url: str | None, max_jobs: int,
                      images: Sequence[ImagePrompt] = (), speed: str | None = None) -> JobUpdate:
        """Start a grid from a prompt (and image prompts: useapi takes their `url`, mj-proxy their bytes)."""
        ...

    async def describe(self, image: ImagePrompt, *, ref: str, callback_url: str | None,
                       speed: str | None = None) -> JobUpdate:
        """Ask Midjourney for the prompts an image suggests; the finished job's `prompts` holds them."""
        ...

    async def blend(self, images: Sequence[ImagePrompt], *, dimensions: str, ref: str, callback_url: str | None,
                    max_jobs: int, speed: str | None = None) -> JobUpdate:
        """Blend two to five images into a grid; `dimensions` one of DIMENSIONS."""
        ...

    async def seed(self, job_id: str) -> str:
        """The seed of a finished job (UNSUPPORTED where the backend cannot tell)."""
        ...

    async def set_speed(self, speed: str) -> str:
        """Make `speed` the one jobs run at (account-wide where the backend's speed is; else checked to be
        offered); what Midjourney or the backend said, in its words. UNSUPPORTED where it is not offered."""
        ...

    async def press(self, parent_job_id: str, button: Button, *, ref: str, callback_url: str | None,
                    max_jobs: int, prompt: str | None = None, speed: str | None = None) -> JobUpdate:
        """Press a button of a finished job, with the prompt a member gave (Custom Zoom, Remix) if any.

        A backend whose prompts go in a second step (mj-proxy's modal) answers AWAITING_PROMPT: the relay keeps
        that job's id, then calls `give_prompt`, so a crash between the steps resumes the second one.
        """
        ...

    async def give_prompt(self, job_id: str, prompt: str, *, mask: bytes | None = None) -> JobUpdate:
        """The second step of a press that answered AWAITING_PROMPT: its prompt (and, for a region, the mask:
        a PNG of the original's size, white where Midjourney redraws)."""
        ...

    async def get(self, job_id: str) -> JobUpdate:
        """One job as the backend knows it now."""
        ...

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, JobUpdate]:
        """Several jobs at once (one request where the backend can); an unknown job is left out."""
        ...

    async def find(self, refs: Collection[str], known: Collection[str] = ()) -> dict[str, JobUpdate]:
        """The backend's jobs made under these references, by reference (adoption after a crash).

        `known` are job ids the relay already follows, not worth asking about.
        """
        ...

    def read_callback(self, body: Mapping[str, Any]) -> CallbackHint:
        """What a callback body claims; ValueError when it does not have the backend's shape."""
        ...

    async def cancel(self, job_id: str) -> None:
        """Cancel a running job."""
        ...

    async def health(self) -> list[str]:
        """Check the service and the account where the backend can: one line per thing found fine, for
        `python -m bot check`; raises `BackendError` on the first thing that is not."""
        ...

    async def accounts(self) -> list[AccountInfo]:
        """The accounts behind the backend and whether one needs a human (UNSUPPORTED where it cannot tell)."""
        ...

    async def reset(self, account: str) -> None:
        """Clear what waits for a human on an account, once a human dealt with it (useapi's reset)."""
        ...

    async def toggle_remix(self) -> str:
        """Toggle the account's Remix mode; Midjourney's answer, in its words."""
        ...
