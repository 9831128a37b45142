"""Something on the network could not be reached: where, without credentials, and why, in a few words."""

from __future__ import annotations

import os
import socket

import aiohttp
import yarl


def safe_url(url: str) -> str:
    """`url` fit to print: no user, password, query or fragment (any of which may carry a secret)."""
    return str(yarl.URL(url).with_user(None).with_query(None).with_fragment(None))


def reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why the connection failed, as the OS says it ("Connection refused", "Name or service not known")."""
    error = exc.os_error
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if error.errno:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


def unreachable(exc: aiohttp.ClientConnectorError, discord_api_base: str) -> str:
    """One sentence: which service could not be reached (Discord's API when it was its host), and why."""
    base = yarl.URL(discord_api_base)
    if (exc.host, exc.port) == (base.host, base.port):
        return f"cannot reach Discord's API at {safe_url(discord_api_base)} ({reason(exc)})"
    return f"cannot reach {exc.host}:{exc.port} ({reason(exc)})"
