"""The useapi.net Midjourney v2 REST client: typed results, one exception class per status."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import yarl
from pydantic import ValidationError

from .errors import (
    ServerError,
    UseapiConnectionError,
    UseapiError,
    UseapiTimeout,
    error_body,
    error_for,
)
from .models import AccountChannel, Job

__all__ = ["UseapiClient"]

log = logging.getLogger(__name__)

_REDACTED = "[redacted]"


def _endpoint_label(path: str) -> str:
    """A low-cardinality name for an endpoint: the channel id in the reset path is left out."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["account", "midjourney"] and len(parts) > 2:
        return "account/midjourney/" + parts[-1] if parts[-1] == "reset" else "account/midjourney"
    return "/".join(parts) or "/"


class UseapiClient:
    """Calls useapi.net v2 over a session the caller owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        channel: str | None = None,
        discord: str | None = None,
        observer: Callable[[str, int], None] | None = None,
    ) -> None:
        self._session = session
        # Told (endpoint, HTTP status or 0 for no answer) after every call: the bot's metrics.
        self._observer = observer
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._channel = channel
        self._discord = discord

    def __repr__(self) -> str:
        return f"UseapiClient(base_url={self.base_url!r}, channel={self._channel!r})"

    async def imagine(
        self,
        prompt: str,
        *,
        max_jobs: int,
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> Job:
        """POST jobs/imagine; the job comes back 'started'."""
        body = self._body(
            prompt=prompt,
            maxJobs=max_jobs,
            channel=self._channel,
            discord=self._discord,
            replyUrl=reply_url,
            replyRef=reply_ref,
        )
        return self._job(await self._call("POST", "jobs/imagine", body=body))

    async def button(
        self,
        jobid: str,
        button: str,
        *,
        max_jobs: int,
        prompt: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> Job:
        """POST jobs/button on a completed job; the new job comes back 'started'."""
        # No channel here: the button runs on the channel of the job it was clicked on.
        body = self._body(
            jobid=jobid,
            button=button,
            prompt=prompt,
            maxJobs=max_jobs,
            discord=self._discord,
            replyUrl=reply_url,
            replyRef=reply_ref,
        )
        return self._job(await self._call("POST", "jobs/button", body=body))

    async def describe(self, describe_url: str, *, reply_url: str | None = None,
                       reply_ref: str | None = None) -> Job:
        """POST jobs/describe: Midjourney's prompts for the image at describe_url; the job comes back 'started'."""
        body = self._body(describeUrl=describe_url, channel=self._channel, discord=self._discord,
                          replyUrl=reply_url, replyRef=reply_ref)
        return self._job(await self._call("POST", "jobs/describe", body=body))

    async def blend(self, blend_urls: Sequence[str], *, dimensions: str | None, max_jobs: int,
                    reply_url: str | None = None, reply_ref: str | None = None) -> Job:
        """POST jobs/blend: a grid from 2 to 5 image links (blendDimensions Portrait, Square or Landscape)."""
        body = self._body(blendUrls=list(blend_urls), blendDimensions=dimensions, maxJobs=max_jobs,
                          channel=self._channel, discord=self._discord, replyUrl=reply_url, replyRef=reply_ref)
        return self._job(await self._call("POST", "jobs/blend", body=body))

    async def seed(self, jobid: str) -> Job:
        """POST jobs/seed_async: a job that completes with Midjourney's reply naming the seed of jobid."""
        # No channel, as for a button: it runs on the channel of the job it asks about.
        body = self._body(jobid=jobid, discord=self._discord)
        return self._job(await self._call("POST", "jobs/seed_async", body=body))

    async def set_speed(self, command: str) -> Job:
        """POST jobs/fast, jobs/relax or jobs/turbo: sets the account's speed; Midjourney's answer is in the job."""
        body = self._body(channel=self._channel, discord=self._discord)
        return self._job(await self._call("POST", f"jobs/{quote(command, safe='')}", body=body))

    async def get_job(self, jobid: str) -> Job:
        """GET jobs/?jobid=: the job as useapi knows it now."""
        # jobids contain ':' which useapi wants percent-encoded; yarl would leave it as is.
        query = "jobid=" + quote(jobid, safe="")
        return self._job(await self._call("GET", "jobs/", query=query))

    async def cancel(self, jobid: str) -> Job:
        """GET jobs/cancel/?jobid=: cancel a running job."""
        query = "jobid=" + quote(jobid, safe="")
        return self._job(await self._call("GET", "jobs/cancel/", query=query))

    async def executing(self) -> list[str]:
        """GET jobs: the jobids useapi is running now."""
        data = await self._call("GET", "jobs")
        if not isinstance(data, list):
            raise ServerError(200, {"error": "GET jobs did not answer a list"})
        return [str(jobid) for jobid in data]

    async def remix(self) -> Job:
        """POST jobs/remix: toggles Remix mode; Midjourney's answer is in the job's content."""
        body = self._body(channel=self._channel, discord=self._discord)
        return self._job(await self._call("POST", "jobs/remix", body=body))

    async def account(self) -> dict[str, AccountChannel]:
        """GET account/midjourney: the configured Midjourney accounts by channel."""
        data = await self._call("GET", "account/midjourney")
        if not isinstance(data, dict):
            raise ServerError(200, {"error": "GET account/midjourney did not answer an object"})
        try:
            return {
                str(channel): AccountChannel.model_validate(value)
                for channel, value in data.items()
                if isinstance(value, dict)
            }
        except ValidationError as exc:
            detail = {"error": "unexpected account/midjourney answer", "errorDetails": str(exc)}
            raise ServerError(200, detail) from None

    async def reset(self, channel: str) -> None:
        """POST account/midjourney/{channel}/reset: clears the pending moderation message (596)."""
        await self._call("POST", f"account/midjourney/{quote(channel, safe='')}/reset", body={})

    @staticmethod
    def _body(**fields: Any) -> dict[str, Any]:
        return {key: value for key, value in fields.items() if value is not None}

    @staticmethod
    def _job(data: Any) -> Job:
        if not isinstance(data, dict):
            raise ServerError(200, {"error": "useapi answered without a job"})
        try:
            return Job.model_validate(data)
        except ValidationError as exc:
            detail = {"error": "unexpected job from useapi", "errorDetails": str(exc)}
            raise ServerError(200, detail) from None

    def _redact(self, text: str) -> str:
        for secret in (self._token, self._discord):
            if secret:
                text = text.replace(secret, _REDACTED)
        return text

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: str | None = None,
    ) -> Any:
        raw = f"{self.base_url}/{path}" + (f"?{query}" if query else "")
        url = yarl.URL(raw, encoded=True)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        status = 0
        try:
            async with self._session.request(
                method, url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                reason = response.reason
                text = self._redact(await response.text(errors="replace"))
        except TimeoutError:
            # aiohttp's own timeouts subclass both TimeoutError and ClientError: this branch must come first.
            raise UseapiTimeout(f"{method} {path}: no answer within {self._timeout.total} s") from None
        except aiohttp.ClientError as exc:
            detail = self._redact(str(exc)) or type(exc).__name__
            raise UseapiConnectionError(f"{method} {path}: {detail}") from exc
        finally:
            if self._observer is not None:
                self._observer(_endpoint_label(path), status)

        if 200 <= status < 300:
            if status == 204 or not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError:
                raise ServerError(status, error_body(text), reason="useapi answered non-JSON") from None
        error: UseapiError = error_for(status, error_body(text))
        if not error.body and reason:
            error = error_for(status, {"error": reason})
        log.debug("useapi %s %s -> %s", method, path, error)
        raise error
