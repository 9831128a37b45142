"""The rules of a job's claim, the same in every SQL dialect: which jobs need a process to follow them.

Several bot processes may share one PostgreSQL database. Each job that still needs work (waiting, being sent,
running, finished but not yet shown, or failed in a way whose result may still come) is held by one process:
`claimed_by` (the process's key, random per start) until `lease_until`, renewed while the process lives.
Only the holder sends it, follows it, and edits or publishes its messages; a lease that expires (or whose
holder is gone) lets another process take the job over. A job that needs nothing more has no lease (NULL):
the lease index stays as small as the work in flight, whatever the history's size.
"""

from __future__ import annotations

from typing import Final

from bot.jobs import LATE_COMPLETION_KINDS, UNFINISHED_STATES


def _quoted(values: frozenset[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


UNFINISHED_SQL: Final = _quoted(UNFINISHED_STATES)
LATE_KINDS_SQL: Final = _quoted(frozenset(str(kind) for kind in LATE_COMPLETION_KINDS))


def needs_owner(since: str) -> str:
    """The SQL condition of a job that needs a holder; `since` is the placeholder of the moment a late failure
    stops being watched (a failure marked this recently may still have its result come in)."""
    return (f"(status IN ({UNFINISHED_SQL}) OR NOT published OR (status = 'failed' AND backend_job_id IS NOT NULL "
            f"AND error_kind IN ({LATE_KINDS_SQL}) AND finished_at > {since}))")


# Migration 5 leaves a lease (0: expired, free to take) on every job that may still need a holder; the first
# pass of any process releases the late failures that are past their window.
MAY_NEED_OWNER: Final = (f"(status IN ({UNFINISHED_SQL}) OR NOT published OR (status = 'failed' "
                         f"AND backend_job_id IS NOT NULL AND error_kind IN ({LATE_KINDS_SQL})))")


def claimable(me: str) -> str:
    """The SQL condition of a queued job a process may claim: one whose working message is up (its filer posted
    it), or that this process (`me`: its key's placeholder) holds. The filer posts that first message; a
    process claiming the job first would post a second one beside it. A turn that falls on a job not yet
    claimable is nobody else's: its filer takes it, or another process once its message is up."""
    return f"(message_id IS NOT NULL OR claimed_by = {me})"


# A job nobody holds yet is being filed (its filer holds it a moment later), unless it has waited this long:
# then its filer died in between, and another process takes it over.
FILING_SECONDS: Final = 10.0
