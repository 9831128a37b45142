"""What could not be reached, said without the credentials a URL may carry."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from bot.reach import safe_url, unreachable

BASE = "https://discord.com/api/v10"


@pytest.mark.parametrize(("url", "shown"), [
    ("https://discord.com/api/v10", "https://discord.com/api/v10"),
    ("http://user:hunter2@proxy.local:8080/api/v10", "http://proxy.local:8080/api/v10"),
    ("https://proxy.local/api/v10?key=hunter2#x", "https://proxy.local/api/v10"),
])
def test_a_url_is_shown_without_user_password_or_query(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def failure(host: str, port: int, error: OSError) -> aiohttp.ClientConnectorError:
    key = ConnectionKey(host, port, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, error)


def test_discord_is_named_when_its_host_is_the_one_unreachable() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('162.159.135.232', 443)")
    assert unreachable(failure("discord.com", 443, refused), BASE) == (
        "cannot reach Discord's API at https://discord.com/api/v10 (Connection refused)")


def test_a_name_that_does_not_resolve_says_so() -> None:
    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert unreachable(failure("discord.com", 443, unknown), BASE) == (
        "cannot reach Discord's API at https://discord.com/api/v10 (Name or service not known)")


def test_another_host_is_named_by_host_and_port() -> None:
    down = OSError(101, "Network is unreachable")
    assert unreachable(failure("api.useapi.net", 443, down), BASE) == (
        "cannot reach api.useapi.net:443 (Network is unreachable)")
