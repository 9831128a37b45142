"""The fake's gateway websocket: HELLO, heartbeats, IDENTIFY/RESUME, dispatches, optional zlib-stream, shards.

A session that IDENTIFYs with `shard: [id, count]` is one shard, as Discord has it: it gets the guilds whose
`(guild_id >> 22) % count` is its id (in READY and GUILD_CREATE) and only their events; DMs go to shard 0.
A session without a shard gets everything, and so does every such session connected at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from .models import JSON

log = logging.getLogger(__name__)

# Opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-opcodes).
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE_UPDATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_GUILD_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

# Long enough that a test never sees a periodic heartbeat; discord.py still sends one right after HELLO.
HEARTBEAT_INTERVAL_MS = 41_250


def shard_of(guild_id: int | None, count: int) -> int:
    """Discord's rule: which of `count` shards gets a guild's events (a DM's: shard 0)."""
    return 0 if guild_id is None else (guild_id >> 22) % count


def covers(shard: tuple[int, int] | None, guild_id: int | None) -> bool:
    return shard is None or shard_of(guild_id, shard[1]) == shard[0]


class GatewayHost(Protocol):
    """What the gateway needs from the fake: the token and the payloads that describe its world."""

    token: str

    def ready_payload(self, session_id: str, resume_url: str, shard: tuple[int, int] | None) -> JSON: ...
    def guild_create_payloads(self, intents: int, shard: tuple[int, int] | None) -> list[JSON]: ...
    def member_chunks(self, request: JSON) -> list[JSON]: ...
    def gateway_changed(self) -> None: ...


@dataclass(eq=False)
class GatewaySession:
    """A logical session; it outlives one websocket when the client RESUMEs."""

    session_id: str
    identify: JSON
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    compressor: Any = None  # zlib.compressobj for this connection, None for plain text frames
    ready: bool = False  # READY and every GUILD_CREATE sent
    resumes: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def intents(self) -> int:
        return int(self.identify.get("intents", 0))

    @property
    def shard(self) -> tuple[int, int] | None:
        given = self.identify.get("shard")
        return (int(given[0]), int(given[1])) if isinstance(given, list) and len(given) == 2 else None

    async def send(self, payload: JSON) -> None:
        ws = self.ws
        if ws is None or ws.closed:
            return
        # One lock per session keeps sequence numbers in send order when dispatches race.
        async with self._lock:
            if payload.get("op") == DISPATCH:
                self.seq += 1
                payload = {**payload, "s": self.seq}
            await _send(ws, payload, self.compressor)


async def _send(ws: web.WebSocketResponse, payload: JSON, compressor: Any) -> None:
    text = json.dumps(payload, separators=(",", ":"))
    if compressor is None:
        await ws.send_str(text)
    else:
        # zlib-stream: one shared stream per connection, each frame ends with a sync flush (00 00 ff ff),
        # which is how discord.py knows a message is complete.
        await ws.send_bytes(compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))


class Gateway:
    def __init__(self, host: GatewayHost, *, zlib_stream: bool) -> None:
        self._host = host
        self._zlib_stream = zlib_stream
        self.url = ""  # set by the server once its port is known
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[web.WebSocketResponse] = set()
        self.identifies = 0
        self.resumes = 0
        self.received: list[JSON] = []  # every payload clients sent, heartbeats included
        # True: new connections are refused (503 at the upgrade), as during an outage of Discord's gateway.
        self.refusing = False

    @property
    def active(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.ready and s.ws is not None and not s.ws.closed]

    async def dispatch(self, event: str, data: JSON, *, intent: int | None = None) -> None:
        """Send a DISPATCH to every connected session (that asked for `intent`, if given) that has its guild."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        for session in self.active:
            if (intent is None or session.intents & intent) and covers(session.shard, guild_id):
                await session.send({"op": DISPATCH, "t": event, "d": data})

    async def reconnect(self) -> None:
        """Ask every client to reconnect (op 7); discord.py then RESUMEs at resume_gateway_url."""
        for session in self.active:
            await session.send({"op": RECONNECT, "d": None})

    async def close(self) -> None:
        for ws in list(self.connections):
            await ws.close(code=1001, message=b"fake discord shutting down")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.connections.add(ws)
        # Clients may ask for zlib-stream or zstd-stream; text frames are always accepted, so anything the
        # fake does not implement (zstd) falls back to plain JSON.
        compressor = None
        if self._zlib_stream and request.query.get("compress") == "zlib-stream":
            compressor = zlib.compressobj()
        session: GatewaySession | None = None
        try:
            await _send(
                ws,
                {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None},
                compressor,
            )
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                self.received.append(payload)
                op = payload.get("op")
                data = payload.get("d")
                if op == HEARTBEAT:
                    await _send(ws, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}, compressor)
                elif op == IDENTIFY:
                    session = await self._identify(ws, compressor, data)
                    if session is None:
                        break
                elif op == RESUME:
                    session = await self._resume(ws, compressor, data)
                elif op == REQUEST_GUILD_MEMBERS and session is not None:
                    for chunk in self._host.member_chunks(data):
                        await session.send({"op": DISPATCH, "t": "GUILD_MEMBERS_CHUNK", "d": chunk})
                elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE):
                    pass  # accepted and ignored, as nobody watches the bot's presence in tests
                else:
                    log.warning("fake gateway ignoring op %s: %s", op, payload)
        finally:
            self.connections.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            self._host.gateway_changed()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, compressor: Any, data: JSON) -> GatewaySession | None:
        if data.get("token") != self._host.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        session = GatewaySession(session_id=secrets.token_hex(16), identify=data, ws=ws, compressor=compressor)
        self.sessions[session.session_id] = session
        self.identifies += 1
        ready = self._host.ready_payload(session.session_id, self.url, session.shard)
        await session.send({"op": DISPATCH, "t": "READY", "d": ready})
        for guild in self._host.guild_create_payloads(session.intents, session.shard):
            await session.send({"op": DISPATCH, "t": "GUILD_CREATE", "d": guild})
        session.ready = True
        self._host.gateway_changed()
        return session

    async def _resume(self, ws: web.WebSocketResponse, compressor: Any, data: JSON) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self._host.token:
            # d=false: not resumable. discord.py then sleeps before re-identifying, so tests avoid this path.
            await _send(ws, {"op": INVALID_SESSION, "d": False, "s": None, "t": None}, compressor)
            return None
        old = session.ws
        session.ws, session.compressor = ws, compressor
        if old is not None and old is not ws:
            with contextlib.suppress(Exception):
                await old.close(code=4000, message=b"session resumed elsewhere")
        session.resumes += 1
        self.resumes += 1
        await session.send({"op": DISPATCH, "t": "RESUMED", "d": {}})
        self._host.gateway_changed()
        return session
