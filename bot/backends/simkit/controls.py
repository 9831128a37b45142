"""What tests read from and wait for on either simulator's engine: the callbacks sent, and a job's body once a
condition on it holds.

Which statuses count as final and the names tests use for the jobs (jobs, tasks) are each backend's own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .background import Callback
from .engine import SimEngine

__all__ = ["EngineControls"]


class EngineControls:
    """A base of each simulator's controls (JobControls, TaskControls), around its `engine`."""

    engine: SimEngine

    @property
    def callbacks(self) -> list[Callback]:
        """Every callback attempted: (the URL it went to, body, the receiver's status or None when it failed)."""
        return self.engine.callbacks

    async def wait_callbacks(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least `count` callbacks were attempted."""
        await self.engine.wait_until(lambda: len(self.callbacks) >= count, timeout)

    async def _copy_when(self, bodies: dict[str, dict[str, Any]], key: str, done: Callable[[dict[str, Any]], bool],
                         timeout: float) -> dict[str, Any]:
        # A copy: the engine goes on changing its own body after the wait, and tests compare what they saw.
        await self.engine.wait_until(lambda: done(bodies[key]), timeout)
        return copy.deepcopy(bodies[key])
