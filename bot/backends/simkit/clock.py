"""The job clock both simulators run: a job's time cut into equal pauses, a progress report after each but the
last, then the end; and how a clock is stopped.

Which statuses the job passes through and what a report or the end writes into it are each backend's own.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

__all__ = ["run_clock", "stop_clock"]


async def run_clock(seconds: float, steps: int, *, running: Callable[[], bool], progress: Callable[[int], object],
                    finish: Callable[[], object]) -> None:
    """Over `seconds`, call progress(percent) `steps` times, evenly spaced, then finish() (awaited when it returns
    a coroutine); stop early, without finishing, as soon as running() no longer holds after a pause."""
    pause = seconds / (steps + 1)
    for step in range(1, steps + 1):
        await asyncio.sleep(pause)
        if not running():
            return
        progress(round(100 * step / (steps + 1)))
    await asyncio.sleep(pause)
    if running():
        # useapi's finish renders its images off the loop (a coroutine); the proxy's is immediate. What either
        # returns besides (the callback's delivery, a task) is not waited for: the clock ends with the job.
        finished = finish()
        if inspect.iscoroutine(finished):
            await finished


def stop_clock(clock: asyncio.Task[None] | None) -> None:
    """Cancel a job's clock, unless it is the task calling: a clock ending its own job runs on to report it."""
    if clock is not None and clock is not asyncio.current_task():
        clock.cancel()
