"""An mj-proxy (trueai-org/midjourney-proxy's HTTP protocol) as a relay `Backend`: the client's calls, its answers
mapped once in `answers`."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.backends.base import (
    DIMENSIONS,
    SPEEDS,
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
from .client import MjproxyClient, speed_base
from .facts import (
    BLEND_DIMENSIONS,
    CUSTOM_ZOOM,
    MAX_BLEND,
    MAX_NOTIFY_HOOK,
    MAX_PROMPT,
    MAX_STATE,
    MIN_BLEND,
    MODAL,
    ONE_SHOT_BUTTONS,
    REGION_BUTTONS,
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
    region=REGION_BUTTONS,
    retention_days=None,  # the proxy keeps its tasks in its own database until its admin clears them
    token_refused=", or the proxy's account for it is disabled",  # noqa: S106 - words, not a token
)
# Callback ids are checked before anything is looked up: trueai's are 16 digits (milliseconds and 3 more).
MAX_TASK_ID_LENGTH = 64

_ADMIN = "the mj-proxy's own admin console"
# The relay's blend shapes in trueai's spelling (BlendDimensions).
_BLEND_DIMENSIONS = {name.lower(): name for name in BLEND_DIMENSIONS}
assert set(_BLEND_DIMENSIONS) == set(DIMENSIONS), "trueai's BlendDimensions and the relay's DIMENSIONS differ"


def _data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


class MjproxyBackend:
    """The relay's calls as mj-proxy requests; `mask` takes secrets out of the bodies kept in the store.

    A call's `speed` picks the proxy's speed base for that submission (speed_base: /mj-fast/mj, /mj-relax/mj,
    /mj-turbo/mj next to the configured /mj); None submits at the configured base. Reads, cancels and the modal
    of a task stay on the configured base: trueai routes /task under every base and reads a task by its id alone
    (TaskController.cs), and a modal's task keeps the speed its press was made with (SubmitController.Modal).
    """

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

    def _base(self, speed: str | None) -> str | None:
        """The base a submission at this speed goes to; None for the configured one."""
        return None if speed is None else self._speed_base(speed)

    def _speed_base(self, speed: str) -> str:
        if speed not in SPEEDS:
            raise BackendError(ErrorKind.BAD_REQUEST, f"the speeds are {', '.join(SPEEDS)}, not {speed!r}",
                               field_name="speed", problem="is not a known speed")
        try:
            return speed_base(self.client.base_url, speed)
        except ValueError as exc:
            raise BackendError(ErrorKind.UNSUPPORTED, f"{exc}: MJPROXY_URL should be the proxy's API root") from None

    @staticmethod
    def _not_offered(speed: str, base: str) -> BackendError:
        return BackendError(ErrorKind.UNSUPPORTED, f"the mj-proxy does not offer {speed} mode at {base}", status=404)

    async def _submit(self, call: Awaitable[SubmitResult], speed: str | None, base: str | None) -> SubmitResult:
        try:
            return await call
        except errors.NotFound as exc:
            # A speed base the proxy does not serve has no route there: a 404 without the proxy's result code.
            if speed is not None and base is not None and exc.code is None:
                raise self._not_offered(speed, base) from exc
            raise answers.error_of(exc) from exc
        except errors.MjproxyError as exc:
            raise answers.error_of(exc) from exc

    def _submitted(self, result: SubmitResult, *, ref: str | None, callback_url: str | None, prompt: str | None,
                   button: str | None = None) -> JobUpdate:
        return answers.submitted(result, ref=ref, callback_url=callback_url, prompt=prompt, button=button,
                                 raw=self._mask(result.model_dump()))

    async def imagine(self, prompt: str, *, ref: str, callback_url: str | None, max_jobs: int,
                      images: Sequence[ImagePrompt] = (), speed: str | None = None) -> JobUpdate:
        # max_jobs is not sent: the proxy runs its own queue per account (codes 22 and 23 tell of it).
        base = self._base(speed)
        urls = [_data_url(image.data, image.content_type) for image in images]
        result = await self._submit(self.client.imagine(prompt, base64_array=urls, notify_hook=callback_url, state=ref,
                                                        base=base), speed, base)
        return self._submitted(result, ref=ref, callback_url=callback_url, prompt=prompt)

    async def describe(self, image: ImagePrompt, *, ref: str, callback_url: str | None,
                       speed: str | None = None) -> JobUpdate:
        base = self._base(speed)
        # The kept bytes, since the relay's own link may be out of the proxy's reach; the link only without them.
        if image.data:
            call = self.client.describe(base64=_data_url(image.data, image.content_type), notify_hook=callback_url,
                                        state=ref, base=base)
        elif image.url:
            call = self.client.describe(link=image.url, notify_hook=callback_url, state=ref, base=base)
        else:
            raise BackendError(ErrorKind.BAD_REQUEST, "the mj-proxy describes an image from its bytes or its link, "
                               "and this one has neither", field_name="base64", problem="is missing")
        result = await self._submit(call, speed, base)
        return self._submitted(result, ref=ref, callback_url=callback_url, prompt=None)

    async def blend(self, images: Sequence[ImagePrompt], *, dimensions: str, ref: str, callback_url: str | None,
                    max_jobs: int, speed: str | None = None) -> JobUpdate:
        if not MIN_BLEND <= len(images) <= MAX_BLEND:
            raise BackendError(ErrorKind.BAD_REQUEST, f"a blend takes {MIN_BLEND} to {MAX_BLEND} images, not "
                               f"{len(images)}", field_name="base64Array",
                               problem=f"must be {MIN_BLEND} to {MAX_BLEND}")
        if not all(image.data for image in images):
            raise BackendError(ErrorKind.BAD_REQUEST, "the mj-proxy blends images from their bytes only, and an image "
                               "has none", field_name="base64Array", problem="must all be images")
        shape = _BLEND_DIMENSIONS.get(dimensions)
        if shape is None:
            raise BackendError(ErrorKind.BAD_REQUEST, f"a blend's dimensions are one of {', '.join(DIMENSIONS)}, not "
                               f"{dimensions!r}", field_name="dimensions", problem="is not a known shape")
        base = self._base(speed)
        urls = [_data_url(image.data, image.content_type) for image in images]
        result = await self._submit(self.client.blend(urls, shape, notify_hook=callback_url, state=ref, base=base),
                                    speed, base)
        return self._submitted(result, ref=ref, callback_url=callback_url, prompt=None)

    async def seed(self, job_id: str) -> str:
        try:
            result = await self.client.image_seed(job_id)
        except errors.MjproxyError as exc:
            raise answers.seed_error(exc) from exc
        return answers.seed_of(result)

    async def set_speed(self, speed: str) -> str:
        # The proxy's speed is chosen per submission, by base: this only checks the proxy serves that base.
        base = self._speed_base(speed)
        try:
            await self.client.offers(base)
        except errors.NotFound as exc:
            raise self._not_offered(speed, base) from exc
        except errors.MjproxyError as exc:
            raise answers.error_of(exc) from exc
        return f"The mj-proxy offers {speed} mode at {base}: jobs asked for at {speed} speed are submitted there."

    async def press(self, parent_job_id: str, button: Button, *, ref: str, callback_url: str | None,
                    max_jobs: int, prompt: str | None = None, speed: str | None = None) -> JobUpdate:
        why = self.facts.unsupported.get(button.name)
        if why is not None:
            raise BackendError(ErrorKind.UNSUPPORTED, why, button=button.name)
        base = self._base(speed)
        # A prompt asks for the modal (code 21): the relay keeps that task, then sends the prompt in give_prompt.
        result = await self._submit(self.client.action(parent_job_id, button.ref, state=ref, notify_hook=callback_url,
                                                       enable_remix=True if prompt else None, base=base), speed, base)
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
