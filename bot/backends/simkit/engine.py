"""What every simulator's engine is through its Background: opened and closed with the server, the callbacks
it sent, and a wait for any change.

The jobs themselves (their bodies, statuses, queue and results) are each backend's engine's own.
"""

from __future__ import annotations

from collections.abc import Callable

from .background import Background, Callback

__all__ = ["SimEngine"]


class SimEngine:
    """The base of JobEngine (useapi) and TaskEngine (mj-proxy): their clocks and callbacks run in _background.

    Callbacks need open() first (the server's app does it at startup); close() cancels the clocks and the
    undelivered callbacks, and nothing is sent after it.
    """

    def __init__(self, *, callback_timeout: float) -> None:
        # The clocks and callback deliveries, and the signal every change gives.
        self._background = Background(callback_timeout=callback_timeout)

    def open(self) -> None:
        """Start taking clocks and callbacks (with the loop running)."""
        self._background.open()

    async def close(self) -> None:
        """Cancel clocks and pending callbacks, close the callback session; later changes send nothing."""
        await self._background.close()

    @property
    def callbacks(self) -> list[Callback]:
        """Every callback attempted, in the order they were delivered."""
        return self._background.callbacks

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Wait until done() holds, checking it after every change."""
        await self._background.wait_until(done, timeout)
