"""The queue of answers a test injects: each for the next calls whose path ends with its endpoint, first queued
first used, gone once used up.

What an injection holds (a status, a result code, a body) and what it answers are each backend's contract.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["InjectionQueue", "Queued"]


class Queued(Protocol):
    """What the queue needs of an injection: the path suffix it answers and how many more calls it takes."""

    endpoint: str
    remaining: int


InjectionT = TypeVar("InjectionT", bound=Queued)


class InjectionQueue(Generic[InjectionT]):
    """The queued injections, first queued first used."""

    def __init__(self) -> None:
        self._queued: list[InjectionT] = []

    def add(self, injection: InjectionT) -> None:
        """Queue an injection after the ones already queued."""
        self._queued.append(injection)

    def take(self, path: str) -> InjectionT | None:
        """The first injection for this path, counted as used; None when there is none."""
        for injection in self._queued:
            if injection.remaining > 0 and path.endswith(injection.endpoint):
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._queued.remove(injection)
                return injection
        return None
