"""What each dialect's accessors share above their SQL: the transitions and fields written through one guarded
primitive that each dialect provides (`_update` for a job, `_get`/`_set` for the relay's state row)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from bot.jobs import FINAL_STATES, QUEUED, RUNNING, SUBMITTING, JobRecord, Pause
from bot.store.records import erased

_REMIX = {"on": True, "off": False}


class JobTransitions:
    """The job transitions that are one guarded `_update` in every dialect."""

    async def _update(self, job_id: int, expect: Iterable[str] | None, **fields: Any) -> JobRecord | None:
        """Set `fields` on the job if it is in one of `expect` states; return the new row, or None."""
        raise NotImplementedError

    async def set_message(self, job_id: int, message_id: int | None) -> JobRecord | None:
        return await self._update(job_id, None, message_id=message_id)

    async def requeue(self, job_id: int, not_before: float, *, error: str | None = None,
                      reset_attempts: bool = False) -> JobRecord | None:
        fields: dict[str, Any] = {"status": QUEUED, "not_before": not_before, "error": error}
        if reset_attempts:
            fields["attempts"] = 0
        return await self._update(job_id, (SUBMITTING, QUEUED), **fields)

    async def mark_running(self, job_id: int, backend_job_id: str, job_json: dict[str, Any]) -> JobRecord | None:
        return await self._update(
            job_id, (SUBMITTING, QUEUED), status=RUNNING, backend_job_id=backend_job_id, job_json=job_json,
            error=None, error_kind=None, last_event_at=time.time(),
        )

    async def mark_awaiting_prompt(self, job_id: int, backend_job_id: str) -> JobRecord | None:
        """The press's first step made `backend_job_id`, which waits for its prompt: kept before the second step,
        so a crash in between resumes it instead of pressing again."""
        return await self._update(job_id, (SUBMITTING,), backend_job_id=backend_job_id)

    async def erase(self, job_id: int, *, forget_prompt: bool) -> JobRecord | None:
        """Take a finished job's messages and result links out of the store (a member deleted it, or an admin
        purged the member's history)."""
        return await self._update(job_id, FINAL_STATES, **erased(forget_prompt=forget_prompt))

    async def set_seed(self, job_id: int, seed: str) -> None:
        """Keep a finished grid's seed once the backend told it, so that asking again costs nothing."""
        await self._update(job_id, None, seed=seed)


class StateFields:
    """The relay state's fields that are one `_get` or `_set` of its single row in every dialect."""

    async def _get(self, column: str) -> Any:
        raise NotImplementedError

    async def _set(self, **fields: Any) -> None:
        raise NotImplementedError

    async def identity(self) -> str:
        """The database's identity, made when it was created (or first migrated); buttons and references carry it."""
        value = await self._get("database_id")
        assert value is not None, "relay_state is made by migration 3"
        return str(value)

    async def set_pause(self, pause: Pause | None) -> None:
        await self._set(paused_reason=pause.reason if pause else None, paused_account=pause.channel if pause else None)

    async def account_remix(self) -> bool | None:
        """The account's Remix mode as Midjourney last said; None when unknown (or never seen)."""
        return _REMIX.get(str(await self._get("account_remix") or ""))

    async def set_account_remix(self, enabled: bool | None) -> None:
        await self._set(account_remix="unknown" if enabled is None else "on" if enabled else "off")
