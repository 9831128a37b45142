"""The editor's link rules, and MemoryLinks as a LinkStore (what the database's must do too)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.editor.links import LIFETIME, EditorLink, LinkStore, MemoryLinks, Refusal, check, looks_like_token, new_link

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def test_a_new_link_is_for_one_member_and_one_job_for_fifteen_minutes() -> None:
    link = new_link("1727000000000123", 42, NOW)
    assert (link.job_id, link.member_id, link.created_at, link.used_at) == ("1727000000000123", 42, NOW, None)
    assert link.expires_at - link.created_at == LIFETIME == timedelta(minutes=15)
    assert looks_like_token(link.token)


def test_tokens_are_unguessable_and_distinct() -> None:
    tokens = {new_link("j", 1, NOW).token for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == 43 for token in tokens)  # 256 bits, URL-safe base64


def test_a_naive_time_is_refused_where_the_mistake_is() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_link("j", 1, datetime(2026, 9, 1, 12, 0))  # naive on purpose


@pytest.mark.parametrize("token", ["", "short", "a" * 42, "a" * 44, "a" * 42 + "/", "a" * 42 + "=", "ä" * 43,
                                   "../../etc/passwd" + "a" * 27])
def test_other_shapes_are_not_tokens(token: str) -> None:
    assert not looks_like_token(token)


def test_check_says_why_a_link_cannot_be_used() -> None:
    link = new_link("j", 1, NOW)
    assert check(link, NOW) is None
    assert check(link, link.expires_at - timedelta(microseconds=1)) is None
    assert check(link, link.expires_at) is Refusal.EXPIRED
    assert check(None, NOW) is Refusal.INVALID
    used = EditorLink(link.token, "j", 1, NOW, link.expires_at, used_at=NOW)
    assert check(used, NOW) is Refusal.USED
    # Used and then expired: "used" is what happened to it.
    assert check(used, link.expires_at + timedelta(hours=1)) is Refusal.USED


def test_the_sentences_are_worded_for_the_page() -> None:
    assert Refusal.USED.sentence.startswith("This link has been used")
    assert Refusal.EXPIRED.sentence.startswith("This link expired")
    assert Refusal.INVALID.sentence.startswith("This link is not valid")
    for refusal in Refusal:
        assert "Vary (Region)" in refusal.sentence  # each says what to do next


async def test_memory_links_keep_and_spend_once() -> None:
    store: LinkStore = MemoryLinks()
    link = new_link("j", 7, NOW)
    await store.create(link)
    assert await store.get(link.token) == link
    assert await store.get("x" * 43) is None
    assert await store.spend(link.token, NOW + timedelta(minutes=1))
    assert not await store.spend(link.token, NOW + timedelta(minutes=2))
    spent = await store.get(link.token)
    assert spent is not None and spent.used_at == NOW + timedelta(minutes=1)
    assert not await store.spend("x" * 43, NOW)


async def test_an_expired_link_cannot_be_spent() -> None:
    store = MemoryLinks()
    link = new_link("j", 7, NOW)
    await store.create(link)
    assert not await store.spend(link.token, link.expires_at)
    assert await store.get(link.token) == link  # still unused: the page says "expired", not "used"


async def test_racing_spends_spend_once() -> None:
    store = MemoryLinks()
    link = new_link("j", 7, NOW)
    await store.create(link)
    results = await asyncio.gather(*(store.spend(link.token, NOW) for _ in range(20)))
    assert results.count(True) == 1


async def test_a_token_is_never_reused() -> None:
    store = MemoryLinks()
    link = new_link("j", 7, NOW)
    await store.create(link)
    with pytest.raises(ValueError, match="exists"):
        await store.create(link)
