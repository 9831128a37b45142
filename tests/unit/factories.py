"""Records to test with, built in memory: every field set to something plausible, any of them overridable."""

from __future__ import annotations

import dataclasses
from typing import Any

from bot.jobs import COMPLETED, JobRecord

IDENTITY = "0123456789"  # a database identity: ten lowercase hex digits, as `new_identity` makes them


def job_record(**changes: Any) -> JobRecord:
    """A completed imagine job #12 of this database; `changes` replace any of its fields."""
    job = JobRecord(
        id=12, ref=f"{IDENTITY}-12", guild_id=1, channel_id=2, owner_id=3, parent_id=None, button=None,
        button_ref=None, prompt="a red fox", button_prompt=None, backend="useapi", backend_job_id="job-12",
        status=COMPLETED, progress=100, buttons=(), media=(), preview_url=None, done_buttons=(), job_json=None,
        message_id=None, extra_message_ids=(), image_url=None, gallery_message_id=None, published=False,
        publish_failures=0, undelivered=None,
        error=None, error_kind=None, duplicate_of=None, attempts=0, not_before=0.0, simulated=False,
        created_at=1_700_000_000.0, updated_at=1_700_000_060.0, submitted_at=None, last_event_at=None,
        finished_at=None,
    )
    return dataclasses.replace(job, **changes)
