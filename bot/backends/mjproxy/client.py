"""The mj-proxy HTTP client: the /mj routes of trueai-org/midjourney-proxy, typed results and typed errors.

Routes: src/Midjourney.API/Controllers/SubmitController.cs and TaskController.cs at ed32197. The token goes in
`mj-api-secret` and in `Authorization` (raw, as trueai compares it, or `Bearer <token>` for hosted gateways);
trueai reads Authorization first when both are there (WorkContext.cs).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from pydantic import ValidationError

from .errors import MjproxyConnectionError, MjproxyError, MjproxyTimeout, NotFound, ServerError, error_for
from .models import SubmitResult, Task

__all__ = ["AuthScheme", "MjproxyClient"]

log = logging.getLogger(__name__)

AuthScheme = Literal["raw", "bearer"]
_REDACTED = "[redacted]"


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

    async def imagine(self, prompt: str, *, base64_array: Sequence[str] = (), notify_hook: str | None = None,
                      state: str | None = None) -> SubmitResult:
        """POST /submit/imagine (SubmitImagineDTO); image prompts as data URLs in base64Array."""
        body = self._body(prompt=prompt, base64Array=list(base64_array) or None, notifyHook=notify_hook,
                          state=state)
        return self._submitted(await self._call("POST", "submit/imagine", body))

    async def action(self, task_id: str, custom_id: str, *, state: str | None = None,
                     notify_hook: str | None = None, enable_remix: bool | None = None) -> SubmitResult:
        """POST /submit/action (SubmitActionDTO): press one of a SUCCESS task's buttons by its customId."""
        body = self._body(taskId=task_id, customId=custom_id, state=state, notifyHook=notify_hook,
                          enableRemix=enable_remix)
        return self._submitted(await self._call("POST", "submit/action", body))

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

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        where = f"{method} {_endpoint_label(path)}"
        status = 0
        try:
            async with self._session.request(method, f"{self.base_url}/{path}", json=body, headers=self._headers(),
                                             timeout=self._timeout) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
                text = self._redact(await response.text(errors="replace"))
        except TimeoutError:
            # aiohttp's timeouts subclass both TimeoutError and ClientError: this branch must come first.
            raise MjproxyTimeout(f"no answer within {self._timeout.total} s", where=where) from None
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
