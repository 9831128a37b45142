"""Which addresses a member's image link may lead the bot to: public ones, and networks an operator allowed."""

from __future__ import annotations

import ipaddress

import pytest

from bot.fetch import parse_networks, permitted


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.10", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::5", "::ffff:127.0.0.1",
                                     "::ffff:10.0.0.1", "224.0.0.1", "ff02::1"])
def test_private_local_and_multicast_addresses_are_refused(address: str) -> None:
    assert not permitted(ipaddress.ip_address(address), [])


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_fetched(address: str) -> None:
    assert permitted(ipaddress.ip_address(address), [])


def test_an_allowed_network_is_fetched_and_only_it() -> None:
    lan = parse_networks("192.168.1.0/24, 10.2.0.0/16")
    assert permitted(ipaddress.ip_address("192.168.1.77"), lan)
    assert permitted(ipaddress.ip_address("::ffff:192.168.1.77"), lan)
    assert not permitted(ipaddress.ip_address("192.168.2.1"), lan)


def test_networks_are_parsed_from_commas_or_spaces_and_a_bad_one_is_named() -> None:
    assert [str(n) for n in parse_networks("10.0.0.0/8 fd00::/8,  127.0.0.1")] == ["10.0.0.0/8", "fd00::/8",
                                                                                     "127.0.0.1/32"]
    assert parse_networks("") == []
    with pytest.raises(ValueError, match="'lan' is not a network"):
        parse_networks("10.0.0.0/8, lan")
