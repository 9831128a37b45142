"""The mj-proxy HTTP client: the /mj routes of trueai-org/midjourney-proxy, typed results and typed errors.

Routes: src/Midjourney.API/Controllers/SubmitController.cs and TaskController.cs at ed32197. The token goes in
`mj-api-secret` and in `Authorization` (raw, as trueai compares it, or `Bearer <token>` for hosted gateways);
trueai reads Authorization first when both are there (WorkContext.cs). A submission may go to a speed base
(`speed_base`: /mj-fast/mj, /mj-relax/mj, /mj-turbo/mj); reads stay on the configured base, since TaskController
is routed under every base and reads a task by its id alone.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from pydantic import ValidationError

from .errors import MjproxyConnectionError, MjproxyError, MjproxyTimeout, NotFound, ServerError, error_for
from .facts import SEED_WAIT, SPEED_MODES
from .models import SubmitResult, Task

__all__ = ["AuthScheme", "MjproxyClient", "speed_base"]

log = logging.getLogger(__name__)

AuthScheme = Literal["raw", "bearer"]
_REDACTED = "[redacted]"
# The API root, or a speed base already: "/mj" or "/mj-relax/mj" at the end of the configured URL.
_ROOT = re.compile(r"(?:/mj-(?:fast|relax|turbo))?/mj$")


def speed_base(base_url: str, speed: str) -> str:
    """The base that runs tasks at `speed`: http://host:8086/mj → http://host:8086/mj-fast/mj. A base that is a speed
    base already is replaced, not nested; ValueError for an unknown speed or a base that does not end in /mj."""
    if speed not in SPEED_MODES:
        raise ValueError(f"no speed {speed!r}: the mj-proxy's are {', '.join(SPEED_MODES)}")
    base = base_url.rstrip("/")
    match = _ROOT.search(base)
    if match is None:
        raise ValueError(f"the mj-proxy's URL {base} does not end in /mj, so its {speed} base cannot be told")
    return f"{base[: match.start()]}/mj-{speed}/mj"


def _endpoint_label(path: str) -> str:
    """A low-cardinality name for an endpoint: task ids are left out ("task/fetch", "task/cancel")."""
    parts = path.strip("/").split("/")
    if parts[0] == "task" and len(parts) == 3:
        return f"task/{parts[2]}"
    return "/".join(parts) or "/"


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class MjproxyClient:
    """Calls an mj-proxy over a session the caller owns; `base_url` is its API root, ending in /mj."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str | None,
        *,
        auth_scheme: AuthScheme = "raw",
        timeout: float = 30.0,
        observer: Callable[[str, int], None] | None = None,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self._auth_scheme = auth_scheme
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Told (endpoint, HTTP status or 0 for no answer) after every call: the bot's metrics.
        self._observer = observer

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs.
        return f"MjproxyClient(base_url={self.base_url!r}, token={'set' if self._token else 'none'})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    # ---- submitting

    # Every submission takes `base`: the speed base to submit at (speed_base), None for the configured one.

    async def imagine(self, prompt: str, *, base64_array: Sequence[str] = (), notify_hook: str | None = None,
                      state: str | None = None, base: str | None = None) -> SubmitResult:
        """POST /submit/imagine (SubmitImagineDTO); image prompts as data URLs in base64Array."""
        body = self._body(prompt=prompt, base64Array=list(base64_array) or None, notifyHook=notify_hook,
                          state=state)
        return self._submitted(await self._call("POST", "submit/imagine", body, base=base))

    async def describe(self, *, base64: str | None = None, link: str | None = None, notify_hook: str | None = None,
                       state: str | None = None, base: str | None = None) -> SubmitResult:
        """POST /submit/describe (SubmitDescribeDTO): the image as a data URL in base64, or its link."""
        body = self._body(base64=base64, link=link, notifyHook=notify_hook, state=state)
        return self._submitted(await self._call("POST", "submit/describe", body, base=base))

    async def blend(self, base64_array: Sequence[str], dimensions: str, *, notify_hook: str | None = None,
                    state: str | None = None, base: str | None = None) -> SubmitResult:
        """POST /submit/blend (SubmitBlendDTO): 2 to 5 data URLs, dimensions PORTRAIT, SQUARE or LANDSCAPE."""
        body = self._body(base64Array=list(base64_array), dimensions=dimensions, notifyHook=notify_hook,
                          state=state)
        return self._submitted(await self._call("POST", "submit/blend", body, base=base))

    async def action(self, task_id: str, custom_id: str, *, state: str | None = None,
                     notify_hook: str | None = None, enable_remix: bool | None = None,
                     base: str | None = None) -> SubmitResult:
        """POST /submit/action (SubmitActionDTO): press one of a SUCCESS task's buttons by its customId."""
        body = self._body(taskId=task_id, customId=custom_id, state=state, notifyHook=notify_hook,
                          enableRemix=enable_remix)
        return self._submitted(await self._call("POST", "submit/action", body, base=base))

    async def modal(self, task_id: str, prompt: str, *, mask_base64: str | None = None) -> SubmitResult:
        """POST /submit/modal (SubmitModalDTO): the prompt (and mask) of a task that answered code 21."""
        body = self._body(taskId=task_id, prompt=prompt, maskBase64=mask_base64)
        return self._submitted(await self._call("POST", "submit/modal", body))

    # ---- reading and cancelling

    async def fetch(self, task_id: str) -> Task:
        """GET /task/{id}/fetch. trueai answers an unknown id with no task at all (ASP.NET's 204 for null)."""
        data = await self._call("GET", f"task/{quote(task_id, safe='')}/fetch")
        if data is None:
            raise NotFound(404, f"no task {task_id}", where="GET task/fetch")
        return self._task(data)

    async def list_by_condition(self, ids: Sequence[str]) -> list[Task]:
        """POST /task/list-by-condition {"ids": [...]} (TaskConditionDTO): the known ones, in any order."""
        return self._tasks(await self._call("POST", "task/list-by-condition", {"ids": list(ids)}), "list-by-condition")

    async def latest(self) -> list[Task]:
        """GET /task/list: the latest 100 tasks, newest first."""
        return self._tasks(await self._call("GET", "task/list"), "list")

    async def cancel(self, task_id: str) -> None:
        """POST /task/{id}/cancel: trueai answers 200 with no body, known task or not."""
        await self._call("POST", f"task/{quote(task_id, safe='')}/cancel", {})

    async def image_seed(self, task_id: str) -> SubmitResult:
        """GET /task/{id}/image-seed: the seed of a finished task as `result` (code 1)."""
        # trueai may wait up to SEED_WAIT for Midjourney's reply before it answers: a shorter timeout would give up
        # on an answer that is still coming.
        timeout = max(self._timeout.total or 0.0, SEED_WAIT + 10)
        data = await self._call("GET", f"task/{quote(task_id, safe='')}/image-seed", timeout=timeout)
        return self._submitted(data)

    async def offers(self, base: str) -> None:
        """Whether the proxy serves its API at this base: NotFound when it does not."""
        # The cheapest authenticated read there: list-by-condition with no ids answers [] without a look at the
        # proxy's database, and a base it does not serve answers 404 (no route).
        await self._call("POST", "task/list-by-condition", {"ids": []}, base=base)

    # ---- the wire

    @staticmethod
    def _body(**fields: Any) -> dict[str, Any]:
        return {key: value for key, value in fields.items() if value is not None}

    @staticmethod
    def _submitted(data: Any) -> SubmitResult:
        if not isinstance(data, dict):
            raise ServerError(200, "the mj-proxy answered a submission without a result object")
        try:
            return SubmitResult.model_validate(data)
        except ValidationError as exc:
            raise ServerError(200, f"unexpected submit result from the mj-proxy: {exc}") from None

    @staticmethod
    def _task(data: Any) -> Task:
        if not isinstance(data, dict):
            raise ServerError(200, "the mj-proxy answered without a task object")
        try:
            return Task.model_validate(data)
        except ValidationError as exc:
            raise ServerError(200, f"unexpected task from the mj-proxy: {exc}") from None

    def _tasks(self, data: Any, what: str) -> list[Task]:
        if not isinstance(data, list):
            raise ServerError(200, f"task/{what} did not answer a list")
        return [self._task(item) for item in data]

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["mj-api-secret"] = self._token
            headers["Authorization"] = f"Bearer {self._token}" if self._auth_scheme == "bearer" else self._token
        return headers

    def _redact(self, text: str) -> str:
        return text.replace(self._token, _REDACTED) if self._token else text

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *, base: str | None = None,
                    timeout: float | None = None) -> Any:
        where = f"{method} {_endpoint_label(path)}"
        status = 0
        limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.request(method, f"{base or self.base_url}/{path}", json=body,
                                             headers=self._headers(), timeout=limit) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
                text = self._redact(await response.text(errors="replace"))
        except TimeoutError:
            # aiohttp's timeouts subclass both TimeoutError and ClientError: this branch must come first.
            raise MjproxyTimeout(f"no answer within {limit.total} s", where=where) from None
        except aiohttp.ClientError as exc:
            raise MjproxyConnectionError(self._redact(str(exc)) or type(exc).__name__, where=where) from exc
        finally:
            if self._observer is not None:
                self._observer(_endpoint_label(path), status)
        if 200 <= status < 300:
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError:
                # A base URL missing its /mj lands on the proxy's web console: HTML with a 200.
                raise ServerError(status, "the mj-proxy answered non-JSON (is the URL its API root, ending in /mj?)",
                                  where=where) from None
        error: MjproxyError = error_for(status, text, where=where, retry_after=retry_after)
        log.debug("mj-proxy %s -> %s", where, error)
        raise error
