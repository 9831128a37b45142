"""Job records to rows and back: whatever the relay stores it reads again unchanged."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from bot.jobs import FAILED, Button, ErrorKind, JobRecord, Media
from bot.store.records import decode_brief, decode_job, encode, job_ref
from tests.unit.factories import IDENTITY, job_record


def row_of(job: JobRecord, **overrides: Any) -> dict[str, Any]:
    """The row the SQLite store writes for `job` (one_shot is a column only the one-shot index uses)."""
    row = {field.name: encode(field.name, getattr(job, field.name)) for field in dataclasses.fields(job)}
    row["one_shot"] = 0
    row.update(overrides)
    return row


def test_job_ref_carries_the_database_identity() -> None:
    assert job_ref(IDENTITY, 12) == "0123456789-12"


def test_a_full_job_reads_back_unchanged() -> None:
    job = job_record(
        parent_id=7, button="U2", button_ref="U2", button_prompt="a red fox --zoom 2",
        buttons=(Button("Upscale (Subtle)", "Upscale (Subtle)"), Button("⬅️", "⬅️"),
                 Button("Vary (Strong)", "MJ::JOB::variation::1::abc")),
        media=(Media("https://cdn/a.png", "image/png", 1234, 1024, 1024, "a.png"), Media("https://cdn/b.mp4")),
        done_buttons=("U1", "U3"), extra_message_ids=(101, 102),
        job_json={"jobid": "j1", "prompt": "un renard roux 🦊", "children": [{"button": "U1"}]},
        message_id=100, published=True, simulated=True, progress=55, preview_url="https://cdn/p.webp",
    )
    assert decode_job(row_of(job), IDENTITY) == job


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_error_kind_reads_back(kind: ErrorKind) -> None:
    # /relay status groups failures by kind: a kind that came back as a plain string would be miscounted.
    job = job_record(status=FAILED, error="words", error_kind=kind)
    decoded = decode_job(row_of(job), IDENTITY)
    assert decoded.error_kind is kind
    assert encode("error_kind", kind) == kind.value


def test_no_error_kind_reads_back_as_none() -> None:
    assert encode("error_kind", None) is None
    assert decode_job(row_of(job_record(), error_kind=None), IDENTITY).error_kind is None
    assert decode_job(row_of(job_record(), error_kind=""), IDENTITY).error_kind is None


def test_a_row_without_its_own_reference_gets_this_databases() -> None:
    # New rows leave ref NULL: the default is this database's `<identity>-<id>`, as job_ref makes it.
    decoded = decode_job(row_of(job_record(id=34), ref=None), IDENTITY)
    assert decoded.ref == "0123456789-34"


def test_a_legacy_rows_own_reference_is_kept() -> None:
    # A job filed before identities was sent with replyRef "34": its callbacks still carry that.
    assert decode_job(row_of(job_record(id=34), ref="34"), IDENTITY).ref == "34"


def test_buttons_stored_as_bare_names_read_as_buttons() -> None:
    # Before the backend seam a job's buttons were useapi names alone, which are their own reference.
    row = row_of(job_record(), buttons=json.dumps(["U1", "🔄"]))
    assert decode_job(row, IDENTITY).buttons == (Button("U1", "U1"), Button("🔄", "🔄"))


def test_json_columns_stored_as_text_keep_unicode_readable() -> None:
    encoded = encode("buttons", (Button("⬅️", "⬅️"),))
    assert encoded == '[{"name": "⬅️", "ref": "⬅️"}]'


def test_empty_or_null_json_columns_read_as_empty() -> None:
    row = row_of(job_record(), buttons="", media=None, done_buttons="", extra_message_ids=None, job_json="")
    decoded = decode_job(row, IDENTITY)
    assert (decoded.buttons, decoded.media, decoded.done_buttons, decoded.extra_message_ids, decoded.job_json) == (
        (), (), (), (), None)


def test_json_columns_already_decoded_by_the_driver_are_taken_as_they_are() -> None:
    # A dialect with a JSON type hands back lists and dicts, not text.
    row = row_of(job_record(), buttons=[{"name": "U1", "ref": "U1"}], media=[{"url": "https://cdn/a.png"}],
                 done_buttons=["U1"], extra_message_ids=[5], job_json={"jobid": "j1"})
    decoded = decode_job(row, IDENTITY)
    assert decoded.buttons == (Button("U1", "U1"),)
    assert decoded.media == (Media("https://cdn/a.png"),)
    assert (decoded.done_buttons, decoded.extra_message_ids, decoded.job_json) == (("U1",), (5,), {"jobid": "j1"})


def test_flags_are_stored_as_integers_and_read_as_booleans() -> None:
    assert encode("published", True) == 1
    assert encode("simulated", False) == 0
    decoded = decode_job(row_of(job_record(), published=1, simulated=0), IDENTITY)
    assert decoded.published is True
    assert decoded.simulated is False


def test_media_keeps_only_what_is_known() -> None:
    assert json.loads(encode("media", (Media("https://cdn/a.png", width=10),))) == [
        {"url": "https://cdn/a.png", "width": 10}]


def test_a_brief_reads_its_seven_columns() -> None:
    assert decode_brief((12, 3, 2, None, "busy", "queued", None)) == decode_brief(
        ["12", "3", "2", None, "busy", "queued", None])
    brief = decode_brief((12, 3, 2, 100, None, "running", "77"))
    assert (brief.id, brief.owner_id, brief.channel_id, brief.message_id, brief.status, brief.claimed_by) == (
        12, 3, 2, 100, "running", 77)


def test_a_row_that_is_not_a_jobs_row_is_refused_naming_the_columns() -> None:
    # Records are filled slot by slot from the row's columns: a column too many or too few must not pass silently.
    with pytest.raises(ValueError, match="unknown columns \\['surprise'\\]"):
        decode_job(row_of(job_record(), surprise=1), IDENTITY)
    row = row_of(job_record())
    del row["prompt"]
    with pytest.raises(ValueError, match="missing \\['prompt'\\]"):
        decode_job(row, IDENTITY)


def test_rows_with_the_same_buttons_share_equal_buttons_and_keep_their_own_fields() -> None:
    grid = (Button("U1", "U1"), Button("🔄", "🔄"))
    first, second = (decode_job(row_of(job_record(id=n, buttons=grid)), IDENTITY) for n in (1, 2))
    assert first.buttons == second.buttons == grid
    assert (first.id, second.id) == (1, 2)
