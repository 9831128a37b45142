"""An mj-proxy (trueai-org/midjourney-proxy's HTTP protocol) as a relay `Backend`: the client's calls, its answers
mapped once in `answers`."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.backends.base import (
    AccountInfo,
    BackendError,
    BackendFacts,
    BackendStatus,
    Button,
    CallbackHint,
    ErrorKind,
    ImagePrompt,
    JobUpdate,
)

from . import answers, errors
from .client import MjproxyClient
from .facts import (
    CUSTOM_ZOOM,
    MAX_NOTIFY_HOOK,
    MAX_PROMPT,
    MAX_STATE,
    MODAL,
    ONE_SHOT_BUTTONS,
    REMIX_BUTTONS,
    UNSUPPORTED_BUTTONS,
)
from .models import SubmitResult, Task

__all__ = ["FACTS", "MAX_TASK_ID_LENGTH", "MjproxyBackend"]

log = logging.getLogger(__name__)

T = TypeVar("T")

FACTS = BackendFacts(
    name="mjproxy",
    label="the mj-proxy",
    account="mj-proxy account",
    token_setting="MJPROXY_TOKEN",  # noqa: S106 - the setting's name, not its value
    prompt_limit=MAX_PROMPT,
    # state takes 255 characters, notifyHook 2000 (SubmitController.NewTask).
    ref_limit=MAX_STATE,
    callback_limit=MAX_NOTIFY_HOOK,
    one_shot=ONE_SHOT_BUTTONS,
    needs_prompt=frozenset({CUSTOM_ZOOM}),
    remix_prompt=REMIX_BUTTONS,
    unsupported=UNSUPPORTED_BUTTONS,
    retention_days=None,  # the proxy keeps its tasks in its own database until its admin clears them
    token_refused=", or the proxy's account for it is disabled",  # noqa: S106 - words, not a token
)
# Callback ids are checked before anything is looked up: trueai's are 16 digits (milliseconds and 3 more).
MAX_TASK_ID_LENGTH = 64

_ADMIN = "the mj-proxy's own admin console"


def _data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


class MjproxyBackend:
    """The relay's calls as mj-proxy requests; `mask` takes secrets out of the bodies kept in the store."""

    facts = FACTS

    def __init__(self, client: MjproxyClient, *, simulated: bool = False,
                 mask: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.client = client
        self.simulated = simulated
        self._mask = mask or (lambda body: body)

    def __repr__(self) -> str:
        return f"MjproxyBackend({self.client!r}, simulated={self.simulated})"

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except errors.MjproxyError as exc:
            raise answers.error_of(exc) from exc

    def _update(self, task: Task) -> JobUpdate:
        return answers.update_of(task, self._mask(task.model_dump()))

    def _submitted(self, result: SubmitResult, *, ref: str | None, callback_url: str | None, prompt: str | None,
                   button: str | None = None) -> JobUpdate:
        return answers.submitted(result, ref=ref, callback_url=callback_url, prompt=prompt, button=button,
                                 raw=self._mask(result.model_dump()))

    async def imagine(self, prompt: str, *, ref: str, callback_url: str | None, max_jobs: int,
                      images: Sequence[ImagePrompt] = ()) -> JobUpdate:
        # max_jobs is not sent: the proxy runs its own queue per account (codes 22 and 23 tell of it).
        urls = [_data_url(image.data, image.content_type) for image in images]
        result = await self._call(self.client.imagine(prompt, base64_array=urls, notify_hook=callback_url, state=ref))
        return self._submitted(result, ref=ref, callback_url=callback_url, prompt=prompt)

    async def press(self, parent_job_id: str, button: Button, *, ref: str, callback_url: str | None,
                    max_jobs: int, prompt: str | None = None) -> JobUpdate:
        why = self.facts.unsupported.get(button.name)
        if why is not None:
            raise BackendError(ErrorKind.UNSUPPORTED, why, button=button.name)
        # A prompt asks for the modal (code 21): the relay keeps that task, then sends the prompt in give_prompt.
        result = await self._call(self.client.action(parent_job_id, button.ref, state=ref, notify_hook=callback_url,
                                                     enable_remix=True if prompt else None))
        return self._submitted(result, ref=ref, callback_url=callback_url, prompt=prompt, button=button.name)

    async def give_prompt(self, job_id: str, prompt: str, *, mask: bytes | None = None) -> JobUpdate:
        task = await self._call(self.client.fetch(job_id))
        if task.status != MODAL:
            # Already sent (a crash after the modal went out): sending it again would start a second job.
            log.info("mj-proxy task %s is %s, not waiting for its prompt: not sent again", job_id, task.status)
            return self._update(task)
        mask_url = _data_url(mask, "image/png") if mask is not None else None
        result = await self._call(self.client.modal(job_id, prompt, mask_base64=mask_url))
        return self._submitted(result, ref=task.state, callback_url=task.notify_hook, prompt=prompt)

    async def get(self, job_id: str) -> JobUpdate:
        return self._update(await self._call(self.client.fetch(job_id)))

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, JobUpdate]:
        wanted = set(job_ids)
        if not wanted:
            return {}
        tasks = await self._call(self.client.list_by_condition(list(dict.fromkeys(job_ids))))
        return {task.id: self._update(task) for task in tasks if task.id in wanted}

    async def find(self, refs: Collection[str], known: Collection[str] = ()) -> dict[str, JobUpdate]:
        # GET /task/list holds the latest 100 tasks only: one submitted further back is not found here.
        wanted = set(refs)
        if not wanted:
            return {}
        skip = set(known)
        tasks = [task for task in await self._call(self.client.latest()) if task.state in wanted]
        # A reference with a task the relay follows already is settled: an older try of it is not adopted.
        followed = {task.state for task in tasks if task.id in skip}
        found: dict[str, JobUpdate] = {}
        for task in tasks:  # newest first: the latest try of a reference wins
            if task.state is not None and task.state not in followed and task.state not in found:
                found[task.state] = self._update(task)
        return found

    def read_callback(self, body: Mapping[str, Any]) -> CallbackHint:
        if not isinstance(body, Mapping):
            raise ValueError("a callback body must be a JSON object (the whole task)")
        task_id = body.get("id")
        if isinstance(task_id, bool) or not isinstance(task_id, str | int):
            raise ValueError("id must be the task id, a string or a number")
        if not 1 <= len(str(task_id)) <= MAX_TASK_ID_LENGTH:
            raise ValueError(f"id must be 1 to {MAX_TASK_ID_LENGTH} characters")
        if "status" not in body:
            raise ValueError("a task callback carries the task's status")
        try:
            task = Task.model_validate(dict(body))
        except ValidationError as exc:
            fields = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors())
            raise ValueError(f"not an mj-proxy task: {fields} do not fit") from None
        status = answers.claimed_status(task)
        running = status in (BackendStatus.QUEUED, BackendStatus.RUNNING)
        return CallbackHint(job_id=task.id, status=status, progress=task.percent,
                            preview_url=task.imageUrl if running else None)

    async def cancel(self, job_id: str) -> None:
        await self._call(self.client.cancel(job_id))

    async def health(self) -> list[str]:
        tasks = await self._call(self.client.latest())
        count = f"{len(tasks)} recent task{'' if len(tasks) == 1 else 's'}"
        reached = f"{self.facts.label_start} answers at {self.client.base_url} (GET /task/list: {count})"
        if self.client.has_token:
            return [reached, f"it accepts the token in {self.facts.token_setting}"]
        return [reached, f"no {self.facts.token_setting} is set, and it takes calls without one"]

    async def accounts(self) -> list[AccountInfo]:
        raise BackendError(ErrorKind.UNSUPPORTED, "The mj-proxy does not tell the relay about its Midjourney "
                                                  f"accounts; see them in {_ADMIN}.")

    async def reset(self, account: str) -> None:
        raise BackendError(ErrorKind.UNSUPPORTED, "The mj-proxy has no reset for the relay to call; clear what "
                                                  f"waits on a Midjourney account in {_ADMIN}.", account=account)

    async def toggle_remix(self) -> str:
        raise BackendError(ErrorKind.UNSUPPORTED, "The mj-proxy has no Remix switch for the relay; turn Remix on "
                                                  f"or off for its Midjourney accounts in {_ADMIN}.")
