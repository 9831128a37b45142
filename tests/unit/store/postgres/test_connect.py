"""A PostgreSQL URL fit to print: the password masked wherever the URL carries it, and errors in one line."""

from __future__ import annotations

import asyncpg
import pytest

from bot.store.postgres.connect import is_postgres_url, masked_url, store_error


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://relay:hunter2@db.example:5432/relay", "postgresql://relay:***@db.example:5432/relay"),
    ("postgres://u:p%40ss%3Aw@ec2-1-2-3-4.compute.example:5432/d9x", "postgres://u:***@ec2-1-2-3-4.compute.example:5432/d9x"),
    ("postgresql://relay@localhost/relay", "postgresql://relay@localhost/relay"),
    ("postgresql://localhost/relay?sslmode=require", "postgresql://localhost/relay?sslmode=require"),
    ("postgresql://relay@localhost/relay?password=hunter2&sslmode=require",
     "postgresql://relay@localhost/relay?password=***&sslmode=require"),
    ("postgresql://relay:a:b@c@host/db", "postgresql://relay:***@host/db"),
])
def test_the_password_is_masked(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_a_malformed_url_is_not_repeated() -> None:
    assert masked_url("postgresql://user:pw@[::1/db") == "(a malformed database URL)"


@pytest.mark.parametrize(("url", "yes"), [("postgresql://h/d", True), ("postgres://h/d", True),
                                          ("sqlite:///x.db", False), ("data/relay.db", False), ("", False)])
def test_which_urls_are_postgresql(url: str, yes: bool) -> None:
    assert is_postgres_url(url) is yes


def test_an_error_is_one_line_without_the_password() -> None:
    url = "postgresql://relay:hunter2@db.example/relay"
    error = store_error(url, asyncpg.InvalidPasswordError('password authentication failed for user "relay"\n'))
    assert str(error) == ('PostgreSQL database postgresql://relay:***@db.example/relay: the password was refused '
                          '(password authentication failed for user "relay")')
    leaked = store_error(url, ValueError("invalid DSN: hunter2 and p%40ss"))
    assert "hunter2" not in str(leaked) and "\n" not in str(leaked)


def test_a_decoded_password_in_a_message_is_masked_too() -> None:
    url = "postgresql://relay:p%40ss@db.example/relay"
    assert "p@ss" not in str(store_error(url, ValueError("bad p@ss here")))
    assert "***" in str(store_error(url, ValueError("bad p@ss here")))
