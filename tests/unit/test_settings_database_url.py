"""DATABASE_URL: optional (empty is unset), a secret, and its password masked in the logs."""

from __future__ import annotations

from bot.logs import SecretMasker
from bot.settings import Settings

TOKEN = "t" * 40


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, DISCORD_TOKEN=TOKEN, **env)  # type: ignore[call-arg, arg-type]


def test_empty_is_unset() -> None:
    assert settings().DATABASE_URL is None
    assert settings(DATABASE_URL="").DATABASE_URL is None
    assert settings(DATABASE_URL="  ").DATABASE_URL is None


def test_the_url_is_a_secret_and_its_password_is_masked() -> None:
    url = "postgres://relay:p%40ss-w0rd-long@db.example:5432/relay"
    configured = settings(DATABASE_URL=url)
    assert configured.DATABASE_URL is not None and configured.DATABASE_URL.get_secret_value() == url
    assert "p%40ss" not in repr(configured)
    masker = SecretMasker(configured.secrets())
    assert masker.mask(f"connecting to {url}") == "connecting to postgres://relay:***@db.example:5432/relay"
    assert masker.mask("password p@ss-w0rd-long refused") == "password *** refused"


def test_a_url_without_a_password_adds_no_secret() -> None:
    assert settings(DATABASE_URL="postgresql://relay@localhost/relay").secrets() == [TOKEN]
