"""Job references in callback paths, and the callback URL a job is sent with."""

from __future__ import annotations

import pytest

from bot.relay.updates import CallbackUrls, parse_ref
from tests.unit.factories import IDENTITY, job_record

OTHER_IDENTITY = "fedcba9876"


def test_a_legacy_bare_number_names_the_job_and_is_stored_as_it_is() -> None:
    # Jobs filed before identities keep their bare reference in the row: the lookup must match it exactly.
    assert parse_ref("12", IDENTITY) == (12, "12")


def test_this_databases_reference_names_the_job_with_the_default_ref() -> None:
    assert parse_ref(f"{IDENTITY}-12", IDENTITY) == (12, None)


def test_another_databases_reference_names_no_job() -> None:
    # A database lost and started again: its old job #12's callbacks must not land on the new #12.
    assert parse_ref(f"{OTHER_IDENTITY}-12", IDENTITY) is None


@pytest.mark.parametrize("ref", [
    "",
    "١",  # an Arabic-Indic digit: str.isdigit() says yes, int() would accept it, SQLite would not match it
    f"{IDENTITY}-١٢",
    "9" * 19,  # over 18 digits: refused, so no reference can overflow SQLite's 64-bit INTEGER
    f"{IDENTITY}-{'9' * 19}",
    f"{IDENTITY}-",
    "-12",
    " 12",
    "12 ",
    "12/13",
    "ABCDEF0123-12",  # identities are lowercase hex
    "0123456789a-12",
])
def test_junk_references_name_no_job(ref: str) -> None:
    assert parse_ref(ref, IDENTITY) is None


def test_the_longest_job_number_still_parses() -> None:
    assert parse_ref("9" * 18, IDENTITY) == (10**18 - 1, "9" * 18)


def test_callback_url_is_the_base_and_the_jobs_reference() -> None:
    urls = CallbackUrls("https://relay.example/callbacks/useapi/s3cret")
    assert urls.for_job(job_record()) == f"https://relay.example/callbacks/useapi/s3cret/{IDENTITY}-12"
    assert urls.for_ref("12") == "https://relay.example/callbacks/useapi/s3cret/12"


def test_no_public_url_means_no_callbacks() -> None:
    urls = CallbackUrls(None)
    assert urls.for_job(job_record()) is None
    assert urls.for_ref("12") is None


def test_a_legacy_job_keeps_its_legacy_callback_path() -> None:
    # The backend still holds the URL the job was sent with; a job filed before identities kept its bare ref.
    urls = CallbackUrls("https://relay.example/cb")
    assert urls.for_job(job_record(ref="12")) == "https://relay.example/cb/12"
