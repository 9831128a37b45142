"""The simulator's controls over its jobs, and the job engine's state as attributes of the simulator."""

from __future__ import annotations

from typing import Any

from bot.backends.simkit import EngineControls
from bot.backends.useapi.facts import EXECUTING_STATUSES

from .engine import JobEngine

__all__ = ["JobControls"]


class JobControls(EngineControls):
    """What tests do to and read from the simulator's jobs; the Simulator is one, around its `engine`."""

    engine: JobEngine

    # ---- the engine's state

    @property
    def channel(self) -> str:
        """The Discord channel of the simulated Midjourney account."""
        return self.engine.channel

    @channel.setter
    def channel(self, value: str) -> None:
        self.engine.channel = value

    @property
    def server(self) -> str:
        """The Discord server of the simulated Midjourney account."""
        return self.engine.server

    @server.setter
    def server(self, value: str) -> None:
        self.engine.server = value

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job by jobid, as GET jobs/?jobid= answers it; tests may edit them in place."""
        return self.engine.jobs

    @property
    def max_executing_seen(self) -> int:
        """The most jobs executing at once so far (tests may reset it)."""
        return self.engine.max_executing_seen

    @max_executing_seen.setter
    def max_executing_seen(self, value: int) -> None:
        self.engine.max_executing_seen = value

    # ---- controls for tests

    def load_jobs(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Know these jobs, given by jobid as GET jobs/?jobid= answers them (e.g. recorded by an older run).

        Completed ones answer GET and take buttons; created/started/progress ones count as executing, with
        no clock, until complete() or fail(); callbacks go to their replyUrl as for any job.
        """
        self.engine.load(jobs)

    def executing(self) -> list[str]:
        """The jobids executing now; jobs running past stale_seconds are failed here, as useapi does."""
        return self.engine.executing()

    async def complete(self, jobid: str) -> None:
        """Complete a job now (any status) and wait for its callback to be delivered."""
        await self.engine.complete(jobid)

    async def fail(self, jobid: str, error: str = "Midjourney could not finish this job (simulated)") -> None:
        """Fail a job now and wait for its callback to be delivered."""
        await self.engine.fail(jobid, error)

    async def progress(self, jobid: str, percent: int, *, preview: bool = False) -> None:
        """Report progress on a job now (with a preview image attached, when asked) and wait for its callback."""
        await self.engine.progress(jobid, percent, preview=preview)

    async def wait_final(self, jobid: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a job is no longer executing and return it."""
        return await self._copy_when(self.jobs, jobid, lambda job: job["status"] not in EXECUTING_STATUSES, timeout)

    async def wait_status(self, jobid: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a job has this status and return it."""
        return await self._copy_when(self.jobs, jobid, lambda job: job["status"] == status, timeout)
