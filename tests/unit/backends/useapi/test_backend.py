"""What a useapi callback body claims, checked for shape only (the relay re-reads the job before believing it)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.backends.base import BackendStatus, CallbackHint
from bot.backends.useapi.backend import MAX_JOBID_LENGTH, UseapiBackend
from bot.backends.useapi.client import UseapiClient


@pytest.fixture
def backend() -> UseapiBackend:
    # read_callback never calls the client: a stand-in keeps sessions and event loops out of these tests.
    return UseapiBackend(cast(UseapiClient, object()))


@pytest.mark.parametrize("body", [
    {},
    {"jobid": None},
    {"jobid": ""},
    {"jobid": 42},
    {"jobid": ["j1"]},
    {"jobid": "j" * (MAX_JOBID_LENGTH + 1)},
    {"jobid": "j1", "status": 200},
    {"jobid": "j1", "status": {"name": "completed"}},
])
def test_a_body_of_the_wrong_shape_is_refused(backend: UseapiBackend, body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        backend.read_callback(body)


def test_the_longest_jobid_is_taken(backend: UseapiBackend) -> None:
    assert backend.read_callback({"jobid": "j" * MAX_JOBID_LENGTH}).job_id == "j" * MAX_JOBID_LENGTH


@pytest.mark.parametrize(("status", "claimed"), [
    ("completed", BackendStatus.DONE),
    ("failed", BackendStatus.FAILED),
    ("moderated", BackendStatus.MODERATED),
    ("cancelled", BackendStatus.CANCELLED),
])
def test_a_final_status_is_claimed(backend: UseapiBackend, status: str, claimed: BackendStatus) -> None:
    hint = backend.read_callback({"jobid": "j1", "status": status})
    assert hint == CallbackHint(job_id="j1", status=claimed)
    assert hint.final


@pytest.mark.parametrize("status", [None, "created", "started", "progress", "Completed", "done"])
def test_any_other_status_claims_nothing_final(backend: UseapiBackend, status: str | None) -> None:
    # Only useapi's own final words end a job; "done" or "Completed" are not among them.
    hint = backend.read_callback({"jobid": "j1", "status": status})
    assert hint.status is None
    assert not hint.final


@pytest.mark.parametrize(("content", "progress"), [
    ("**a fox** - <@1308> (42%) (fast)", 42),
    ("**a fox** - <@1308> (100%) (fast)", 100),
    ("**a fox** - (180%)", 100),  # capped: the bar never overflows
    ("**a fox** - <@1308> (Waiting to start)", None),
    (17, None),  # not text: no figure, but not a refusal either
    (None, None),
])
def test_progress_is_read_from_the_content(backend: UseapiBackend, content: Any, progress: int | None) -> None:
    hint = backend.read_callback({"jobid": "j1", "status": "progress", "content": content})
    assert hint.progress == progress


def test_extra_fields_are_ignored(backend: UseapiBackend) -> None:
    body = {"jobid": "j1", "status": "completed", "buttons": ["U1"], "attachments": "whatever", "code": 200}
    assert backend.read_callback(body) == CallbackHint(job_id="j1", status=BackendStatus.DONE)
