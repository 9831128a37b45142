"""The simulator's controls over its tasks, and the task engine's state as attributes of the simulator."""

from __future__ import annotations

from typing import Any

from bot.backends.mjproxy.facts import FINAL_STATUSES
from bot.backends.simkit import EngineControls

from .engine import TaskEngine

__all__ = ["TaskControls"]

SIMULATED_FAILURE = "Midjourney could not finish this task (simulated)"


class TaskControls(EngineControls):
    """What tests do to and read from the simulator's tasks; the Simulator is one, around its `engine`."""

    engine: TaskEngine

    # ---- the engine's state

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every task by id, as GET /task/{id}/fetch answers it; tests may edit them in place."""
        return self.engine.tasks

    @property
    def running(self) -> list[str]:
        """The tasks holding one of the max_running slots."""
        return self.engine.running

    @property
    def waiting(self) -> list[str]:
        """The tasks in the proxy's own queue, first served first."""
        return self.engine.waiting

    @property
    def max_running(self) -> int:
        """How many tasks run at once; the rest wait in the queue (code 22)."""
        return self.engine.max_running

    @max_running.setter
    def max_running(self, value: int) -> None:
        self.engine.max_running = value

    @property
    def queue_size(self) -> int:
        """How many tasks may wait; one more is refused (code 23, or 9 as trueai says it)."""
        return self.engine.queue_size

    @queue_size.setter
    def queue_size(self, value: int) -> None:
        self.engine.queue_size = value

    @property
    def max_running_seen(self) -> int:
        """The most tasks running at once so far (tests may reset it)."""
        return self.engine.max_running_seen

    @max_running_seen.setter
    def max_running_seen(self, value: int) -> None:
        self.engine.max_running_seen = value

    # ---- controls for tests

    async def complete(self, task_id: str) -> None:
        """Complete a task now (whatever its status) and wait for its callback to be delivered."""
        await self.engine.complete(task_id)

    async def fail(self, task_id: str, reason: str = SIMULATED_FAILURE) -> None:
        """Fail a task now with this failReason (a moderation phrase makes it moderated) and wait for its callback."""
        await self.engine.fail_now(task_id, reason)

    async def progress(self, task_id: str, percent: int) -> None:
        """Report progress on a task now (starting it if it was queued) and wait for its callback."""
        await self.engine.progress(task_id, percent)

    async def wait_status(self, task_id: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a task has this status and return it."""
        return await self._copy_when(self.tasks, task_id, lambda task: task["status"] == status, timeout)

    async def wait_final(self, task_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a task is SUCCESS, FAILURE or CANCEL and return it."""
        return await self._copy_when(self.tasks, task_id, lambda task: task["status"] in FINAL_STATUSES, timeout)
