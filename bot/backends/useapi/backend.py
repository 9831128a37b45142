"""useapi.net v2 as a relay `Backend`: the REST client's calls, its answers mapped once in `answers`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from bot.backends.base import (
    DIMENSIONS,
    SPEEDS,
    AccountInfo,
    BackendError,
    BackendFacts,
    Button,
    CallbackHint,
    ErrorKind,
    ImagePrompt,
    JobUpdate,
)

from . import answers, errors
from .client import UseapiClient
from .facts import (
    BLEND_DIMENSIONS,
    CUSTOM_ZOOM,
    FINAL_STATUSES,
    MAX_BLEND,
    MAX_PROMPT,
    MAX_REPLY,
    MIN_BLEND,
    ONE_SHOT_BUTTONS,
    REMIX_BUTTONS,
)
from .models import Job, parse_progress

log = logging.getLogger(__name__)

T = TypeVar("T")

FACTS = BackendFacts(
    name="useapi",
    label="useapi",
    account="useapi account",
    token_setting="USEAPI_TOKEN",  # noqa: S106 - the setting's name, not its value
    prompt_limit=MAX_PROMPT,
    ref_limit=MAX_REPLY,
    callback_limit=MAX_REPLY,
    one_shot=ONE_SHOT_BUTTONS,
    needs_prompt=frozenset({CUSTOM_ZOOM}),
    remix_prompt=REMIX_BUTTONS,
    retention_days=31,
    images_by_link=True,  # describeUrl, blendUrls and image prompts leading the prompt: links useapi fetches
    account_speed=True,  # jobs/fast, relax and turbo switch the account; a job call takes no speed
)
# Callback fields are checked before anything is looked up: useapi's jobids are about 80 characters.
MAX_JOBID_LENGTH = 256
# The relay's blend shapes in useapi's spelling (its OpenAPI enum).
_BLEND_DIMENSIONS = {name.lower(): name for name in BLEND_DIMENSIONS}
assert set(_BLEND_DIMENSIONS) == set(DIMENSIONS), "useapi's blendDimensions and the relay's DIMENSIONS differ"


class UseapiBackend:
    """The relay's calls as useapi v2 requests; `mask` takes secrets out of the bodies kept in the store.

    useapi's speed is the Midjourney account's own, set with `set_speed` (jobs/fast, relax, turbo): the `speed`
    of a call that starts a job is ignored, since useapi has no per-request speed to give it to.
    `seed_poll` and `seed_timeout` (seconds) pace the wait for a seed (see `seed`).
    """

    facts = FACTS

    def __init__(self, client: UseapiClient, *, simulated: bool = False,
                 mask: Callable[[dict[str, Any]], dict[str, Any]] | None = None, seed_poll: float = 1.0,
                 seed_timeout: float = 30.0) -> None:
        self.client = client
        self.simulated = simulated
        self._mask = mask or (lambda body: body)
        self._seed_poll = seed_poll
        self._seed_timeout = seed_timeout

    def __repr__(self) -> str:
        return f"UseapiBackend({self.client!r}, simulated={self.simulated})"

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except errors.UseapiError as exc:
            raise answers.error_of(exc) from exc

    def _update(self, job: Job) -> JobUpdate:
        return answers.update_of(job, self._mask(job.model_dump()))

    async def imagine(self, prompt: str, *, ref: str, callback_url: str | None, max_jobs: int,
                      images: Sequence[ImagePrompt] = (), speed: str | None = None) -> JobUpdate:
        # useapi takes image prompts as links leading the prompt, as Midjourney's own /imagine does.
        links = [image.url for image in images if image.url]
        if len(links) != len(images):
            raise BackendError(ErrorKind.BAD_REQUEST, "useapi takes image prompts only as links")
        text = " ".join([*links, prompt])
        job = await self._call(self.client.imagine(text, max_jobs=max_jobs, reply_url=callback_url, reply_ref=ref))
        return self._update(job)

    async def describe(self, image: ImagePrompt, *, ref: str, callback_url: str | None,
                       speed: str | None = None) -> JobUpdate:
        if not image.url:
            # useapi fetches the image itself (describeUrl): it takes no bytes.
            raise BackendError(ErrorKind.BAD_REQUEST, "useapi describes an image only from a link, and this image "
                               "has none", field_name="describeUrl", problem="is missing")
        job = await self._call(self.client.describe(image.url, reply_url=callback_url, reply_ref=ref))
        return self._update(job)

    async def blend(self, images: Sequence[ImagePrompt], *, dimensions: str, ref: str, callback_url: str | None,
                    max_jobs: int, speed: str | None = None) -> JobUpdate:
        links = [image.url for image in images if image.url]
        if len(links) != len(images):
            raise BackendError(ErrorKind.BAD_REQUEST, "useapi blends images only from links, and an image has none",
                               field_name="blendUrls", problem="must all be links")
        if not MIN_BLEND <= len(links) <= MAX_BLEND:
            raise BackendError(ErrorKind.BAD_REQUEST, f"a blend takes {MIN_BLEND} to {MAX_BLEND} images, not "
                               f"{len(links)}", field_name="blendUrls", problem=f"must be {MIN_BLEND} to {MAX_BLEND}")
        shape = _BLEND_DIMENSIONS.get(dimensions)
        if shape is None:
            raise BackendError(ErrorKind.BAD_REQUEST, f"a blend's dimensions are one of {', '.join(DIMENSIONS)}, not "
                               f"{dimensions!r}", field_name="blendDimensions", problem="is not a known shape")
        job = await self._call(self.client.blend(links, dimensions=shape, max_jobs=max_jobs, reply_url=callback_url,
                                                 reply_ref=ref))
        return self._update(job)

    async def seed(self, job_id: str) -> str:
        # seed_async starts a job of its own, which completes with Midjourney's reply naming the seed. The relay
        # asked a question and waits for its answer here: that job is no member's (no message shows it, no
        # callback route knows it), so it is polled, every seed_poll seconds since Midjourney answers within a
        # few, and for seed_timeout at most since an answer that has not come by then will not come.
        job = await self._call(self.client.seed(job_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seed_timeout
        while not job.is_final:
            left = deadline - loop.time()
            if left <= 0:
                raise BackendError(ErrorKind.TIMED_OUT, f"Midjourney did not answer the seed request within "
                                                        f"{self._seed_timeout:g} s (useapi job {job.jobid})")
            await asyncio.sleep(min(self._seed_poll, left))
            job = await self._call(self.client.get_job(job.jobid))
        return answers.seed_of(job)

    async def set_speed(self, speed: str) -> str:
        if speed not in SPEEDS:
            raise BackendError(ErrorKind.BAD_REQUEST, f"the speeds are {', '.join(SPEEDS)}, not {speed!r}",
                               field_name="speed", problem="is not a known speed")
        # jobs/fast, relax and turbo change the Midjourney account's speed for every job after it.
        return answers.reply_of(await self._call(self.client.set_speed(speed)))

    async def press(self, parent_job_id: str, button: Button, *, ref: str, callback_url: str | None,
                    max_jobs: int, prompt: str | None = None, speed: str | None = None) -> JobUpdate:
        job = await self._call(self.client.button(parent_job_id, button.ref, prompt=prompt, max_jobs=max_jobs,
                                                  reply_url=callback_url, reply_ref=ref))
        return self._update(job)

    async def give_prompt(self, job_id: str, prompt: str, *, mask: bytes | None = None) -> JobUpdate:
        # useapi takes a button's prompt with the press itself, so it never asks for one afterwards.
        raise BackendError(ErrorKind.UNSUPPORTED, "useapi takes a button's prompt with the press itself")

    async def get(self, job_id: str) -> JobUpdate:
        return self._update(await self._call(self.client.get_job(job_id)))

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, JobUpdate]:
        # useapi v2 reads one job a request; an unknown one is left out for the caller to notice.
        found: dict[str, JobUpdate] = {}
        for job_id in job_ids:
            try:
                found[job_id] = await self.get(job_id)
            except BackendError as exc:
                if exc.kind is not ErrorKind.NOT_FOUND:
                    raise
        return found

    async def find(self, refs: Collection[str], known: Collection[str] = ()) -> dict[str, JobUpdate]:
        # Only jobs useapi is executing are listed (GET jobs); one that already finished is not found here.
        wanted = set(refs)
        found: dict[str, JobUpdate] = {}
        if not wanted:
            return found
        for job_id in await self._call(self.client.executing()):
            if len(found) == len(wanted):
                break
            if job_id in known:
                continue
            try:
                update = await self.get(job_id)
            except BackendError:
                continue
            if update.ref in wanted and update.ref not in found:
                found[update.ref] = update
        return found

    def read_callback(self, body: Mapping[str, Any]) -> CallbackHint:
        jobid = body.get("jobid")
        status = body.get("status")
        if not isinstance(jobid, str) or not jobid or len(jobid) > MAX_JOBID_LENGTH:
            raise ValueError("jobid must be a string of 1 to 256 characters")
        if status is not None and not isinstance(status, str):
            raise ValueError("status must be a string")
        content = body.get("content")
        progress = parse_progress(content) if isinstance(content, str) else None
        claimed = answers.status_of(Job(jobid=jobid, status=status)) if status in FINAL_STATUSES else None
        # A progress post may carry Midjourney's preview as its attachment: a hint to look, like the rest.
        attachments = body.get("attachments")
        first = attachments[0] if isinstance(attachments, list) and attachments else None
        preview = first.get("url") if isinstance(first, dict) and claimed is None else None
        return CallbackHint(job_id=jobid, status=claimed, progress=None if progress is None else min(progress, 100),
                            preview_url=preview if isinstance(preview, str) else None)

    async def cancel(self, job_id: str) -> None:
        await self._call(self.client.cancel(job_id))

    async def health(self) -> list[str]:
        accounts = await self.accounts()
        if not accounts:
            raise BackendError(ErrorKind.BAD_REQUEST, "useapi has no Midjourney account configured "
                                                      "(GET /account/midjourney is empty)")
        pending = [account.name for account in accounts if account.needs_human]
        if pending:
            raise BackendError(ErrorKind.NEEDS_HUMAN, f"Midjourney has a pending moderation message on channel "
                                                      f"{', '.join(pending)}: answer it in Discord, then run "
                                                      "/relay reset", account=pending[0])
        return [f"{len(accounts)} Midjourney account(s), none pending moderation"]

    async def accounts(self) -> list[AccountInfo]:
        found = await self._call(self.client.account())
        return [AccountInfo(name=name, needs_human=account.pendingModMessage, max_jobs=account.maxJobs)
                for name, account in found.items()]

    async def reset(self, account: str) -> None:
        await self._call(self.client.reset(account))

    async def toggle_remix(self) -> str:
        # Midjourney's words in a settings job: the message content, else the first embed's description.
        return answers.reply_of(await self._call(self.client.remix()))
