"""Fetching an image a member gave by its link (`/describe url:`), without letting the link reach inside.

A member's link is fetched by the bot's own machine, so a link to `http://127.0.0.1:…`, `http://10.0.0.5/`
or the cloud's metadata address would make the bot read what only it can reach. Every address a link
leads to (the name's, each redirect's) must be a public one, checked where the connection is made (so a
name that resolves differently the second time cannot slip past); networks an operator trusts (a LAN image
server) can be allowed by IMAGE_URL_ALLOW_NETWORKS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.uploads import MAX_UPLOAD_BYTES, Upload, checked, size_words

FETCH_TIMEOUT: Final = 20.0
MAX_REDIRECTS: Final = 3
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(Exception):
    """The link cannot be fetched; the message is the sentence for the member."""


def permitted(address: Address, allowed: Sequence[Network]) -> bool:
    """Whether the bot may connect to `address`: a public one, or inside a network the operator allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def parse_networks(text: str) -> list[Network]:
    """IMAGE_URL_ALLOW_NETWORKS: CIDRs separated by commas or spaces (ValueError names a bad one)."""
    found = []
    for part in text.replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (like 192.168.1.0/24)") from None
    return found


class _GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the bot may connect to."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allowed = allowed
        self.refused: str | None = None

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [entry for entry in found if permitted(ipaddress.ip_address(entry["host"]), self._allowed)]
        if not kept:
            self.refused = f"`{host}` is a private or local address"
            # An OSError is what aiohttp expects of a resolver that finds nothing it may use.
            raise OSError(f"{host}: no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _check_link(url: str, allowed: Sequence[Network]) -> str:
    """The link's host, once its scheme and (for an address written out) the address are allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("The link must be an http:// or https:// address of an image. Nothing was sent.")
    address = _literal(parts.hostname)
    # aiohttp does not resolve an address written out, so the resolver never sees it: checked here.
    if address is not None and not permitted(address, allowed):
        raise FetchRefused(f"The bot does not fetch images from private or local addresses like `{parts.hostname}`."
                           " Nothing was sent.")
    return parts.hostname


async def fetch_image(url: str, allowed: Sequence[Network] = (), *, timeout: float = FETCH_TIMEOUT) -> Upload:
    """The image at `url`, read and checked (FetchRefused with the sentence when it cannot be)."""
    resolver = _GuardedResolver(allowed)
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    limits = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=limits, trust_env=False) as session:
        for _ in range(MAX_REDIRECTS + 1):
            host = _check_link(url, allowed)
            try:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    return await _read(response, url)
            except aiohttp.ClientConnectorError:
                if resolver.refused:
                    raise FetchRefused(f"The bot does not fetch images from private or local addresses: "
                                       f"{resolver.refused}. Nothing was sent.") from None
                raise FetchRefused(f"The bot could not connect to `{host}`. Nothing was sent.") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise FetchRefused(f"The bot could not fetch that link ({_reason(exc)}). Nothing was sent.") from None
    raise FetchRefused(f"The link redirects more than {MAX_REDIRECTS} times. Nothing was sent.")


async def _read(response: aiohttp.ClientResponse, url: str) -> Upload:
    if response.status != 200:
        raise FetchRefused(f"The link answered {response.status} {response.reason or ''}".rstrip()
                           + ", not an image. Nothing was sent.")
    announced = response.content_length
    if announced is not None and announced > MAX_UPLOAD_BYTES:
        raise FetchRefused(f"The image at that link is {size_words(announced)}; images can be at most "
                           f"{size_words(MAX_UPLOAD_BYTES)}. Nothing was sent.")
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data.extend(chunk)
        if len(data) > MAX_UPLOAD_BYTES:
            raise FetchRefused(f"The image at that link is over {size_words(MAX_UPLOAD_BYTES)}, the most an image "
                               "can be. Nothing was sent.")
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "the image"
    result = checked(name, bytes(data))
    if isinstance(result, str):
        raise FetchRefused(result)
    return result


def _reason(exc: Any) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
