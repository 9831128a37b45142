"""Reaching a PostgreSQL database: its URL fit to print (password masked), a pool of connections, and every
way of failing to connect turned into one `StoreError` line that names the database and what is wrong."""

from __future__ import annotations

import errno
import socket
from typing import Final, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.store.base import StoreError

SCHEMES: Final = ("postgresql://", "postgres://")  # Heroku's DATABASE_URL says postgres://
MASK: Final = "***"
# A database that does not answer in this long is reported, not waited for (asyncpg's own default is 60 s).
CONNECT_TIMEOUT: Final = 10.0
# Several relay processes share the server's connection limit (20 on the smallest hosted plans): each keeps
# few. The relay's statements are short; a slow one waits for a free connection rather than opening more.
POOL_SIZE: Final = 4

# asyncpg's classes are generic only in its stubs: the aliases are strings, read by the type checker alone.
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# A connection of its own, or one lent by the pool: either runs the statements.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def _passwords(url: str) -> list[str]:
    """The URL's password as written and as decoded, from its user part and any `password=` parameter."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""] + [value for key, value in parse_qsl(parts.query) if key == "password"]
    except ValueError:
        return []
    return sorted({text for raw in found if raw for text in (raw, unquote(raw))}, key=len, reverse=True)


def masked_url(url: str) -> str:
    """The URL with its password (in the user part, or a `password=` parameter) shown as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed database URL)"
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = urlencode([(key, MASK if key == "password" else value) for key, value in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scrub(text: str, url: str) -> str:
    """`text` on one line, without the URL's password wherever a driver's message may have repeated it."""
    for secret in _passwords(url):
        text = text.replace(secret, MASK)
    return " ".join(text.split())


def _said(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _reason(exc: BaseException) -> str:
    """What went wrong, in the words an operator acts on."""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return f"the password was refused ({_said(exc)})"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"no such database ({_said(exc)})"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"the server refused the connection ({_said(exc)})"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot be reached: unknown host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "cannot be reached: connection refused (is the server running, on this host and port?)"
    if isinstance(exc, OSError):
        return f"cannot be reached: {exc.strerror or _said(exc)}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"the server said: {_said(exc)}"
    if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
        return f"the URL is not usable: {_said(exc)}"
    return f"{type(exc).__name__}: {_said(exc)}"


def store_error(url: str, exc: BaseException) -> StoreError:
    """One line naming the database (password masked) and what is wrong with it."""
    return StoreError(_scrub(f"PostgreSQL database {masked_url(url)}: {_reason(exc)}", url))


# What talking to the database raises when it cannot be used (a lost connection, the server refusing); a
# connection attempt adds ValueError, for a URL asyncpg cannot read. Anything else is a bug, left to surface.
SERVER_ERRORS: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
CONNECT_ERRORS: Final = (*SERVER_ERRORS, ValueError)


async def open_pool(url: str, *, size: int = POOL_SIZE) -> Pool:
    """A pool of connections to the database at `url`, with one connection made (so a wrong URL fails here)."""
    if not is_postgres_url(url):
        raise StoreError(f"{masked_url(url)}: not a PostgreSQL URL (postgresql://... or postgres://...)")
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=CONNECT_TIMEOUT)
    except CONNECT_ERRORS as exc:
        raise store_error(url, exc) from None
    return pool


def changed(status: str) -> int:
    """The rows a command changed, from the status tag asyncpg returns for it ('DELETE 3', 'UPDATE 1')."""
    return int(status.rsplit(" ", 1)[-1])
