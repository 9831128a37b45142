"""Migration 3's pure rewrites: an old failure's number as an error kind, an old useapi body's files as media."""

from __future__ import annotations

from typing import Any

import pytest

from bot.jobs import ErrorKind
from bot.store.sqlite.migrations import legacy_kind, legacy_media, new_identity


@pytest.mark.parametrize(("code", "kind"), [
    (400, ErrorKind.BAD_REQUEST),
    (1400, ErrorKind.BAD_REQUEST),  # the old relay's own numbers: it refused a request useapi would reject,
    (401, ErrorKind.UNAUTHORISED),
    (402, ErrorKind.NO_SUBSCRIPTION),
    (404, ErrorKind.NOT_FOUND),
    (409, ErrorKind.ALREADY_DONE),
    (422, ErrorKind.MODERATED),
    (429, ErrorKind.BUSY),
    (504, ErrorKind.UNTRACKABLE),
    (596, ErrorKind.NEEDS_HUMAN),
    (1408, ErrorKind.TIMED_OUT),  # ... the job stayed unfinished too long,
    (1503, ErrorKind.UNAVAILABLE),  # ... useapi could not be reached after every retry,
    (1415, ErrorKind.UNAVAILABLE),  # ... the result image could not be fetched or uploaded
])
def test_every_old_code(code: int, kind: ErrorKind) -> None:
    assert legacy_kind("failed", code) == kind.value


@pytest.mark.parametrize("code", [500, 502, 503, 520, 599])
def test_an_unknown_server_error_was_an_outage(code: int) -> None:
    assert legacy_kind("failed", code) == ErrorKind.UNAVAILABLE.value


@pytest.mark.parametrize("code", [0, 403, 418, 499, 600, 1234])
def test_any_other_unknown_code_was_a_failed_job(code: int) -> None:
    assert legacy_kind("failed", code) == ErrorKind.JOB_FAILED.value


@pytest.mark.parametrize("code", [None, 422, 500])
def test_moderated_and_cancelled_go_by_status_whatever_the_code(code: int | None) -> None:
    assert legacy_kind("moderated", code) == ErrorKind.MODERATED.value
    assert legacy_kind("cancelled", code) == ErrorKind.CANCELLED.value


@pytest.mark.parametrize("status", ["completed", "failed", "queued", "duplicate"])
def test_no_code_no_kind(status: str) -> None:
    assert legacy_kind(status, None) is None


def test_attachments_are_the_media_with_their_known_fields() -> None:
    body: dict[str, Any] = {"attachments": [
        {"url": "https://cdn/a.png", "content_type": "image/png", "size": 1234, "width": 1024, "height": 1024,
         "filename": "a.png", "proxy_url": "https://proxy/a.png", "id": "99"},
        {"url": "https://cdn/b.png", "content_type": None},
    ]}
    assert legacy_media(body) == [
        {"url": "https://cdn/a.png", "content_type": "image/png", "size": 1234, "width": 1024, "height": 1024,
         "filename": "a.png"},
        {"url": "https://cdn/b.png"},
    ]


def test_attachments_without_a_link_are_skipped() -> None:
    body: dict[str, Any] = {"attachments": [{"filename": "a.png"}, {"url": 5}, "junk", {"url": "https://cdn/c.png"}]}
    assert legacy_media(body) == [{"url": "https://cdn/c.png"}]


def test_without_attachments_the_first_embeds_image() -> None:
    body: dict[str, Any] = {"attachments": [], "embeds": [{"image": {"url": "https://cdn/e.png", "width": 5}},
                                                          {"image": {"url": "https://cdn/second.png"}}]}
    assert legacy_media(body) == [{"url": "https://cdn/e.png"}]


@pytest.mark.parametrize("body", [
    None,
    {},
    {"attachments": None, "embeds": None},
    {"embeds": ["junk"]},
    {"embeds": [{"image": "https://cdn/e.png"}]},
    {"embeds": [{"image": {"width": 5}}]},
])
def test_a_body_with_no_files_has_no_media(body: dict[str, Any] | None) -> None:
    assert legacy_media(body) == []


def test_a_new_identity_is_ten_lowercase_hex_digits() -> None:
    # The pattern buttons and references are parsed with (render, updates) accepts exactly this.
    identities = {new_identity() for _ in range(20)}
    assert len(identities) == 20
    assert all(len(value) == 10 and set(value) <= set("0123456789abcdef") for value in identities)
