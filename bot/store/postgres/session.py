"""A process's own connection to PostgreSQL, outside the pool: the lock that says the process is alive, the
LISTEN through which the others wake it, and (when it holds it) the gateway lock.

All three live and die with this one connection, as PostgreSQL ties session locks and LISTEN to it: a process
killed with `kill -9` loses them the moment the server sees its socket close, so the others can take over its
jobs and the gateway without waiting for a lease to run out. Should the connection drop while the process lives,
it is made again (the gateway is given up first: another process may hold it by then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

import asyncpg

from bot.store.postgres.connect import CONNECT_ERRORS, CONNECT_TIMEOUT, SERVER_ERRORS, masked_url

log = logging.getLogger(__name__)

# Advisory locks of two 32-bit keys: a namespace ("rlpr", "rlgw", "rlsl" read as numbers) and a key in it.
PROCESS_LOCKS: Final = int.from_bytes(b"rlpr", "big")  # one per live process, its key
GATEWAY_LOCK: Final = (int.from_bytes(b"rlgw", "big"), 0)
SLOTS_LOCK: Final = (int.from_bytes(b"rlsl", "big"), 0)  # taken for each claim of a slot, in its transaction
WAKE_CHANNEL: Final = "relay_wake"  # payload: the sender's key
JOB_CHANNEL: Final = "relay_job"  # payload: "<holder's key>:<job id>"
# How often the connection is checked: a silently broken one is noticed within this, plus a query's timeout.
WATCH_SECONDS: Final = 1.0
QUERY_TIMEOUT: Final = 5.0
RECONNECT_MAX_SECONDS: Final = 5.0

# The keys of the live processes on this database (their locks are granted on some session).
ALIVE_SQL: Final = f"""SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = {PROCESS_LOCKS}
    AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""  # noqa: S608 - our constants


def new_key() -> int:
    return secrets.randbelow(2**31 - 2) + 1


class Session:
    """The connection, kept open (and made again) until close()."""

    def __init__(self, url: str, on_notify: Callable[[str, str], None], on_reconnect: Callable[[], None]) -> None:
        self._url = url
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self.me = new_key()
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._lost = asyncio.Event()  # set once the current connection is gone; a new one comes with a new event
        self._closing = False
        self._watch: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._conn = await self._connect(first=True)
        self._watch = asyncio.create_task(self._watchdog(), name="pg-session-watch")

    async def _connect(self, *, first: bool) -> asyncpg.Connection[asyncpg.Record]:
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        try:
            # A key another live process has (one in two billion) is changed at the first start; later the old
            # session of this process may still be seen for a moment, so the same key is waited for.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", PROCESS_LOCKS, self.me):
                if first:
                    self.me = new_key()
                else:
                    await asyncio.sleep(WATCH_SECONDS)
            for channel in (WAKE_CHANNEL, JOB_CHANNEL):
                await conn.add_listener(channel, self._heard)
            conn.add_termination_listener(self._terminated)
        except BaseException:
            conn.terminate()
            raise
        self._lost = asyncio.Event()
        return conn

    def _heard(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        self._on_notify(channel, str(payload))

    def _terminated(self, _conn: Any) -> None:
        self._lost.set()

    @property
    def lost_signal(self) -> asyncio.Event:
        """The event set when the current connection (and everything held on it) is gone."""
        return self._lost

    async def _watchdog(self) -> None:
        while not self._closing:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.fetchval("SELECT 1")
                continue
            except (*SERVER_ERRORS, TimeoutError) as exc:
                if self._closing:
                    return
                log.warning("lost the database session (%s): the gateway is given up and the session made again",
                            " ".join(str(exc).split()) or type(exc).__name__)
            self._lost.set()
            if self._conn is not None:
                self._conn.terminate()
            await self._reconnect()

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                self._conn = await self._connect(first=False)
            except CONNECT_ERRORS as exc:
                log.info("database %s: session not made again yet (%s)", masked_url(self._url), type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            log.info("database session made again")
            # Wake-ups sent meanwhile were not heard: look again now.
            self._on_reconnect()
            return

    async def fetchval(self, sql: str, *values: Any) -> Any:
        """One statement on the session's connection (raises what the driver raises when it is gone)."""
        conn = self._conn
        if conn is None or conn.is_closed():
            raise asyncpg.InterfaceError("the session's connection is closed")
        async with self._using, asyncio.timeout(QUERY_TIMEOUT):
            return await conn.fetchval(sql, *values)

    async def close(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(*SERVER_ERRORS, TimeoutError):
                await asyncio.wait_for(self._conn.close(), QUERY_TIMEOUT)
        self._lost.set()


class PgGateway:
    """The gateway lock: a session-level advisory lock on the session's connection, polled for by the processes
    standing by, and lost with that connection."""

    def __init__(self, session: Session, poll_seconds: float = 1.0) -> None:
        self._session = session
        self._poll = poll_seconds
        self._held_on: asyncio.Event | None = None  # the lost-signal of the connection that holds it

    async def acquire(self) -> None:
        while True:
            signal = self._session.lost_signal
            try:
                if not signal.is_set() and await self._session.fetchval("SELECT pg_try_advisory_lock($1, $2)",
                                                                         *GATEWAY_LOCK):
                    self._held_on = signal
                    return
            except (*SERVER_ERRORS, TimeoutError):
                pass  # the session is being made again; try after a moment
            await asyncio.sleep(self._poll)

    async def lost(self) -> None:
        assert self._held_on is not None, "acquire() first"
        await self._held_on.wait()

    async def release(self) -> None:
        held, self._held_on = self._held_on, None
        if held is not None and not held.is_set():
            with contextlib.suppress(*SERVER_ERRORS, TimeoutError):
                await self._session.fetchval("SELECT pg_advisory_unlock($1, $2)", *GATEWAY_LOCK)
