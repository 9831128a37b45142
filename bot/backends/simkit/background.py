"""A simulator's background work: the asyncio tasks its engine spawns (job clocks, callback deliveries), the
signal that wakes whoever waits for a change, and the callbacks it delivered.

What a callback carries, where it goes and when one is due is each backend's contract; how it is POSTed,
timed out, recorded and kept in order is the same for both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

__all__ = ["Background", "Callback"]

log = logging.getLogger(__name__)

# (the receiver's URL, the body POSTed, the receiver's status or None when the delivery failed)
Callback = tuple[str, dict[str, Any], int | None]


class Background:
    """The tasks an engine runs beside its requests, cancelled together on close(), and the callbacks sent.

    Tasks and callbacks need open() first (with the loop running); after close(), spawn() runs nothing,
    so a change made while the simulator shuts down sends nothing.
    """

    def __init__(self, *, callback_timeout: float) -> None:
        self.callbacks: list[Callback] = []
        self._callback_timeout = callback_timeout
        self._tasks: set[asyncio.Task[Any]] = set()
        # Replaced on every change, so waiters need no polling.
        self._changed = asyncio.Event()
        self._closed = False
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Start taking tasks and callbacks (with the loop running)."""
        self._closed = False
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Cancel every task still running, close the callback session; later spawns run nothing."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The clocks and callback deliveries still running."""
        return frozenset(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run coro as a task close() will cancel; None (and coro closed unrun) once closed."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    # ---- changes and the ones waiting for them

    def notify(self) -> None:
        """Wake every wait_until() to check its condition again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Wait until done() holds, checking it after every change."""
        async with asyncio.timeout(timeout):
            while True:
                # Taken before the check, so a change between the check and the wait is not missed.
                changed = self._changed
                if done():
                    return
                await changed.wait()

    @staticmethod
    async def settle(task: asyncio.Task[None] | None) -> None:
        """Wait for a delivery (if there is one) without cancelling it when the waiter is cancelled."""
        if task is not None:
            await asyncio.shield(task)

    # ---- callbacks

    def deliver(self, lock: asyncio.Lock, url: str, payload: dict[str, Any]) -> asyncio.Task[None] | None:
        """POST payload to url as a task, after the deliveries holding the same lock (one job's lock keeps its
        callbacks in order even when a receiver is slow); returns the delivery, None once closed."""
        return self.spawn(self._post(lock, url, payload))

    async def _post(self, lock: asyncio.Lock, url: str, payload: dict[str, Any]) -> None:
        async with lock:
            status: int | None = None
            try:
                if self._session is None:
                    raise RuntimeError("simulator is not serving")
                timeout = aiohttp.ClientTimeout(total=self._callback_timeout)
                async with self._session.post(url, json=payload, timeout=timeout) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                # A receiver that is down or slow is what tests provoke: recorded with no status, not raised.
                log.info("simulated callback to %s failed: %r", url, exc)
            self.callbacks.append((url, payload, status))
            self.notify()
