"""The one fair-share rule: of the members with work waiting, the one served longest ago goes first.

One person's twenty clicks do not starve a colleague's one. The scheduler applies the rule to pick the next
job; the display replays it to show each waiting job its true place in line. Who was served when is read
from the store (each owner's latest submission), so the turns hold across restarts and across processes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from bot.jobs import JobBrief
from bot.store import Store


class Owned(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def owner_id(self) -> int: ...


OwnedT = TypeVar("OwnedT", bound=Owned)


def turn_key(job: Owned, last_served: Mapping[int, float]) -> tuple[float, int]:
    """The order of turns: the owner served longest ago (never served: first), then the older job."""
    return last_served.get(job.owner_id, 0.0), job.id


def pick(candidates: Sequence[OwnedT], last_served: Mapping[int, float]) -> OwnedT:
    """The job that goes next, of each owner's oldest ready job."""
    return min(candidates, key=lambda job: turn_key(job, last_served))


def round_robin(queued: Sequence[OwnedT], last_served: Mapping[int, float]) -> list[OwnedT]:
    """`queued` in the order the scheduler sends them, were every job ready now: `pick` replayed."""
    waiting: dict[int, deque[OwnedT]] = {}
    for job in sorted(queued, key=lambda j: j.id):
        waiting.setdefault(job.owner_id, deque()).append(job)
    served = dict(last_served)
    clock = max(served.values(), default=0.0)
    order: list[OwnedT] = []
    while waiting:
        job = pick([jobs[0] for jobs in waiting.values()], served)
        jobs = waiting[job.owner_id]
        order.append(jobs.popleft())
        if not jobs:
            del waiting[job.owner_id]
        clock += 1.0
        served[job.owner_id] = clock
    return order


class FairShare:
    """The rule applied to the store's record of who was served when: the same for every process on the
    database (the claim of a slot applies `pick` inside its own transaction, bot.store.base.Coordinator)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def order(self) -> list[JobBrief]:
        """Every waiting job, in the order they will be sent."""
        queued = await self._store.jobs.queued_briefs()
        served = await self._store.jobs.last_served_of({job.owner_id for job in queued})
        return round_robin(queued, served)

    async def place(self, job_id: int) -> int | None:
        """A waiting job's 1-based place in line; None when it is not waiting."""
        order = await self.order()
        return next((place for place, queued in enumerate(order, start=1) if queued.id == job_id), None)
