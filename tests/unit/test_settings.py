"""Settings errors as sentences an operator can act on: every bad setting named, what it must be, what was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

TOKEN = "discord-token-0123456789abcdef"


def problems(**given: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, **{"DISCORD_TOKEN": TOKEN, **given})
    return caught.value.problems


@pytest.mark.parametrize(("name", "value", "sentence"), [
    ("PORT", "abc", "PORT must be a whole number, got 'abc'"),
    ("PORT", "70000", "PORT must be between 0 and 65535, got '70000'"),
    ("USEAPI_MAX_JOBS", "40", "USEAPI_MAX_JOBS must be between 1 and 15, got '40'"),
    ("USEAPI_MAX_JOBS", "0", "USEAPI_MAX_JOBS must be between 1 and 15, got '0'"),
    ("MJPROXY_MAX_JOBS", "lots", "MJPROXY_MAX_JOBS must be a whole number, got 'lots'"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'verbose'"),
    ("LOG_FORMAT", "yaml", "LOG_FORMAT must be one of text, json, got 'yaml'"),
    ("POLL_INTERVAL", "soon", "POLL_INTERVAL must be a number, got 'soon'"),
    ("POLL_INTERVAL", "0", "POLL_INTERVAL must be more than 0, got '0'"),
    ("USER_DAILY_QUOTA", "-1", "USER_DAILY_QUOTA must be 0 or more, got '-1'"),
    ("BACKEND", "midjourney", "BACKEND must be one of useapi, mjproxy, simulator, got 'midjourney'"),
    ("MJPROXY_AUTH_SCHEME", "basic", "MJPROXY_AUTH_SCHEME must be one of raw, bearer, got 'basic'"),
    ("DISCORD_GUILD_ID", "my-server", "DISCORD_GUILD_ID must be a whole number, got 'my-server'"),
    ("ALLOWED_GUILD_IDS", "12,abc", "ALLOWED_GUILD_IDS must be server ids separated by commas, got '12,abc'"),
    ("PUBLIC_URL", "relay.example.com", "PUBLIC_URL must start with http:// or https://, got 'relay.example.com'"),
    ("MJPROXY_URL", "http://127.0.0.1:8086",
     "MJPROXY_URL must be the proxy's base, ending in /mj (e.g. http://127.0.0.1:8086/mj), got 'http://127.0.0.1:8086'"),
    ("DATABASE_PATH", " ", "DATABASE_PATH must be a file's path, got ' '"),
    ("DISCORD_API_BASE", "http://relay:hunter2@proxy.local/api/v10",
     "DISCORD_API_BASE must not carry a user or password (the bot token is Discord's credential), "
     "got 'http://***@proxy.local/api/v10'"),
])
def test_one_bad_setting_is_one_sentence(name: str, value: str, sentence: str) -> None:
    assert problems(**{name: value}) == [sentence]


def test_every_bad_setting_is_named_one_sentence_each() -> None:
    found = problems(PORT="abc", USEAPI_MAX_JOBS="40", LOG_LEVEL="verbose", POLL_INTERVAL="x")
    assert sorted(found) == sorted([
        "PORT must be a whole number, got 'abc'",
        "USEAPI_MAX_JOBS must be between 1 and 15, got '40'",
        "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'verbose'",
        "POLL_INTERVAL must be a number, got 'x'",
    ])
    text = "\n".join(found)
    assert "more" not in text and "Value error" not in text and "Input should" not in text


def test_a_setting_read_under_its_old_name_is_named_as_given() -> None:
    assert problems(USEAPI_RETRY_SECONDS="x") == ["USEAPI_RETRY_SECONDS must be a number, got 'x'"]
    assert problems(BACKEND_RETRY_SECONDS="x") == ["BACKEND_RETRY_SECONDS must be a number, got 'x'"]


def test_a_missing_token_says_where_it_was_looked_for(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env_file)
    assert caught.value.problems == [
        f"setting DISCORD_TOKEN is required (set it in the environment or in {env_file})"]
    # Empty, as `.env.example` lists it, is the same as unset.
    env_file.write_text("DISCORD_TOKEN=\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env_file)
    assert caught.value.problems == [
        f"setting DISCORD_TOKEN is required (set it in the environment or in {env_file})"]


def test_values_from_the_env_file_are_checked_and_named_the_same(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DISCORD_TOKEN={TOKEN}\nUSEAPI_RETRY_ATTEMPTS=0\nLOG_LEVEL=debug\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env_file)
    assert caught.value.problems == ["USEAPI_RETRY_ATTEMPTS must be 1 or more, got '0'"]


def test_secrets_are_never_echoed() -> None:
    # A secret pasted into the wrong setting is still a secret.
    found = problems(DISCORD_TOKEN="   ", USEAPI_TOKEN=TOKEN, PORT=TOKEN)
    assert found == ["setting DISCORD_TOKEN is required (set it in the environment)",
                     "PORT must be a whole number, got '***'"]


def test_a_password_in_a_url_is_not_echoed() -> None:
    (line,) = problems(PUBLIC_URL="ftp://relay:hunter2-password@relay.example.com")
    assert line == "PUBLIC_URL must start with http:// or https://, got 'ftp://***@relay.example.com'"


def test_a_rule_across_settings_keeps_its_sentence() -> None:
    assert problems(USEAPI_TOKEN=TOKEN, MJPROXY_URL="http://127.0.0.1:8086/mj") == [
        "USEAPI_TOKEN and MJPROXY_URL are both set: choose one with BACKEND=useapi or BACKEND=mjproxy"]


def test_good_values_in_any_case_are_taken() -> None:
    settings = load_settings(env_file=None, DISCORD_TOKEN=TOKEN, LOG_LEVEL="warning", LOG_FORMAT="JSON")
    assert isinstance(settings, Settings)
    assert (settings.LOG_LEVEL, settings.LOG_FORMAT) == ("WARNING", "json")
    assert load_settings(env_file=None, DISCORD_TOKEN=TOKEN).LOG_FORMAT == "text"


def test_the_error_reads_as_lines() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, DISCORD_TOKEN=TOKEN, PORT="x", LOG_LEVEL="y")
    assert str(caught.value).splitlines() == caught.value.problems
