"""A per-channel budget for non-final message edits (progress bars, queue places).

Discord rate-limits message edits per channel, so every non-final edit in one channel shares one budget:
at most one edit per `interval` seconds, and a burst of updates to the same message collapses into one
edit of its latest state. Final results never pass through here. The budget is the coordination's
(`edit_turn`): kept in the database when several processes edit in one channel with one bot token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Edit = Callable[[], Awaitable[None]]
# Take the channel's next edit if it is due (0.0), else the seconds until it is: (channel, interval, now).
Turn = Callable[[int, float, float], Awaitable[float]]


class EditCoalescer:
    """Queues the latest edit per key, and runs them one channel at a time within the budget."""

    def __init__(self, interval: float, turn: Turn) -> None:
        self.interval = interval
        self._turn = turn
        self._pending: dict[int, dict[int, Edit]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self.edits_run = 0

    def schedule(self, channel_id: int, key: int, edit: Edit) -> None:
        """Replace any waiting edit for `key` with `edit`, to run within `channel_id`'s budget."""
        self._pending.setdefault(channel_id, {})[key] = edit
        worker = self._workers.get(channel_id)
        if worker is None or worker.done():
            self._workers[channel_id] = asyncio.create_task(self._drain(channel_id), name=f"edits-{channel_id}")

    def cancel(self, key: int) -> None:
        """Drop a waiting edit for `key` (its final state is about to be shown)."""
        for pending in self._pending.values():
            pending.pop(key, None)

    async def _drain(self, channel_id: int) -> None:
        pending = self._pending[channel_id]
        while pending:
            try:
                wait = await self._turn(channel_id, self.interval, time.time())
            except Exception:
                log.exception("edit budget of channel %d unreadable; trying again", channel_id)
                wait = self.interval
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if not pending:
                break
            # Oldest waiting message first, so every job's bar moves in turn.
            key = next(iter(pending))
            edit = pending.pop(key)
            try:
                await edit()
                self.edits_run += 1
            except Exception:
                log.exception("progress edit in channel %d failed", channel_id)

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._pending.clear()
