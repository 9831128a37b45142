"""Which process holds Discord's gateway, when several share one database.

Interactions (slash commands, clicks, ❌) arrive over the gateway, and Discord sends each to every connected
session of a bot that is not sharded: so exactly one process connects. The store's gateway lock decides which
(PostgreSQL: a session-level advisory lock on the process's own connection; SQLite: the one process there
is). The others stand by: they take callbacks, schedule, poll and publish through the REST API, and poll for
the lock every second, so that when the holder dies one of them connects within a few seconds and members
can click again. A holder whose database connection is lost has lost the lock with it: it disconnects at once,
since another process may hold the gateway a moment later.

With SHARD_IDS each process connects its own shards and takes no turn (bot.client.ShardedRelayBot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from typing import Any

from bot.store.base import GatewayLock

log = logging.getLogger(__name__)


class Role(StrEnum):
    """This process's part at the gateway, as /healthz and /readyz report it."""

    CONNECTING = "connecting"  # holding the gateway (or its own shards), not connected yet or reconnecting
    CONNECTED = "connected"
    STANDBY = "standby"  # another process holds the gateway


class GatewayTurn:
    """Runs discord.py's `connect` while this process holds the gateway lock, and stands by when it does not."""

    def __init__(self, lock: GatewayLock, *, shared: bool) -> None:
        self._lock = lock
        self._shared = shared
        self.holding = not shared  # without turns (own shards), always
        self._closing = asyncio.Event()

    def close(self) -> None:
        """The bot is closing: stop standing by."""
        self._closing.set()

    async def run(self, connect: Callable[[], Coroutine[Any, Any, None]],
                  disconnect: Callable[[], Awaitable[None]]) -> None:
        """Until the bot closes: wait for the lock, connect, and give the gateway up if the lock is lost."""
        if not self._shared:
            await connect()
            return
        while not self._closing.is_set():
            if not await self._wait_for_lock():
                return
            self.holding = True
            log.info("this process holds Discord's gateway: connecting")
            connecting = asyncio.create_task(connect(), name="gateway-connect")
            lost = asyncio.create_task(self._lock.lost(), name="gateway-lock-lost")
            await asyncio.wait({connecting, lost}, return_when=asyncio.FIRST_COMPLETED)
            if connecting.done():
                # The bot closed (or discord.py gave up for good): the lock goes with the process.
                lost.cancel()
                self.holding = False
                await self._lock.release()
                connecting.result()
                return
            self.holding = False
            log.warning("lost the gateway lock with the database session: disconnecting from the gateway and "
                        "standing by, since another process may hold it now")
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            await disconnect()

    async def _wait_for_lock(self) -> bool:
        """True once held; False when the bot closes first."""
        acquiring = asyncio.create_task(self._lock.acquire(), name="gateway-lock")
        closing = asyncio.create_task(self._closing.wait(), name="gateway-closing")
        announced = False
        try:
            while True:
                done, _ = await asyncio.wait({acquiring, closing}, timeout=None if announced else 2.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                if acquiring in done:
                    acquiring.result()
                    return True
                if closing in done:
                    return False
                # Not at once: a process starting beside a holder that is only restarting would say it for nothing.
                log.info("another process holds Discord's gateway: standing by (callbacks, scheduling, polling "
                         "and publishing go on here)")
                announced = True
        finally:
            for task in (acquiring, closing):
                task.cancel()
            await asyncio.gather(acquiring, closing, return_exceptions=True)
