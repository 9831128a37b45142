"""The relay's shared plumbing: one lock per job, the background tasks it must wait for at shutdown, and the
scheduler's wake-up."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any


class JobLocks:
    """One asyncio lock per job: every read-decide-write of a job's state happens under it.

    Kept only while someone holds or waits on it, so a long history costs no memory. A lock of this process:
    across processes the job's holder is the only one that sends, shows or publishes it (bot.store.claims), and
    every other write is a guarded statement, so another process racing it changes nothing it should not.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, job_id: int) -> asyncio.Lock:
        lock = self._locks.get(job_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[job_id] = lock
        return lock


class Tasks:
    """Background work (a submission, a verification, a note) started by one part and finished at stop()."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float) -> None:
        """Give in-flight work `grace` seconds to record what it did; what is cut short resumes at the next start."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class Wake(asyncio.Event):
    """The scheduler's wake-up: a freed slot or a new job sets it, here and (through `others`) in the other
    processes on the database, whose scheduler may be the one with a slot to give."""

    def __init__(self, others: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.others = others

    def set(self) -> None:
        super().set()
        self.others()

    def set_here(self) -> None:
        """Another process woke us: look again, without waking them back."""
        super().set()
