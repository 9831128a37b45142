"""SHARD_COUNT and SHARD_IDS: read, checked against each other, and what they make of the gateway."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

TOKEN = "discord-token-0123456789abcdef"


def problems(**given: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, DISCORD_TOKEN=TOKEN, **given)
    return caught.value.problems


@pytest.mark.parametrize(("given", "sentence"), [
    ({"SHARD_IDS": "0,1"}, "SHARD_IDS is set without SHARD_COUNT: give the number of shards in all too"),
    ({"SHARD_COUNT": "2", "SHARD_IDS": "1,2,5"}, "SHARD_IDS must be shards 0 to 1 of SHARD_COUNT=2, got 2,5"),
    ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be between 1 and 10000, got '0'"),
    ({"SHARD_COUNT": "two"}, "SHARD_COUNT must be a whole number, got 'two'"),
    ({"SHARD_COUNT": "2", "SHARD_IDS": "first"},
     "SHARD_IDS must be shard numbers separated by commas (e.g. 0,1), got 'first'"),
])
def test_a_bad_shard_setting_is_one_sentence(given: dict[str, str], sentence: str) -> None:
    assert problems(**given) == [sentence]


def test_shard_ids_are_read_in_order_once_each() -> None:
    settings = load_settings(env_file=None, DISCORD_TOKEN=TOKEN, SHARD_COUNT="4", SHARD_IDS=" 3, 1,1")
    assert (settings.SHARD_COUNT, settings.SHARD_IDS) == (4, (1, 3))
    assert settings.sharded and not settings.gateway_shared, "its own shards: no turn at the gateway"


def test_without_shard_ids_the_processes_take_turns_at_the_gateway() -> None:
    plain = load_settings(env_file=None, DISCORD_TOKEN=TOKEN, SHARD_COUNT="", SHARD_IDS="")
    assert (plain.sharded, plain.gateway_shared) == (False, True)
    counted = load_settings(env_file=None, DISCORD_TOKEN=TOKEN, SHARD_COUNT="3")
    assert (counted.sharded, counted.gateway_shared, counted.SHARD_IDS) == (True, True, ())
