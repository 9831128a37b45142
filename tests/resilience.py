"""Helpers for the restart, callback, outage and secret tests: what Discord shows, what the store holds."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import CHANNEL_ID, FakeDiscord
from tests.harness import SIM_TOKEN, eventually, ref_number

JSON = dict[str, Any]


@asynccontextmanager
async def manual_simulator(**options: Any) -> AsyncIterator[Simulator]:
    """A simulator whose jobs stay running until the test calls complete() or fail()."""
    simulator = Simulator(token=SIM_TOKEN, job_seconds=None, **options)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


def mentions_job(message: JSON, job_id: int) -> bool:
    # "job #1" must not match "job #12".
    return re.search(rf"job #{job_id}(?!\d)", message.get("content", "")) is not None


def is_result(message: JSON) -> bool:
    """A completed job's card: the image uploaded as a file, with the job's buttons under it."""
    return bool(message.get("attachments")) and bool(message.get("components"))


def results_for(fake: FakeDiscord, job_id: int, channel_id: int = CHANNEL_ID) -> list[JSON]:
    """Every message in the channel (deleted ones excepted) showing job `job_id`'s result."""
    return [m for m in fake.channel_messages(channel_id) if mentions_job(m, job_id) and is_result(m)]


async def wait_results(fake: FakeDiscord, jobs: Iterable[int], timeout: float = 15.0) -> None:
    """Until each of `jobs` has its result in the channel."""
    wanted = list(jobs)
    await eventually(lambda: all(results_for(fake, job) for job in wanted), timeout=timeout)


def cards_for(fake: FakeDiscord, job_id: int, channel_id: int = CHANNEL_ID) -> list[JSON]:
    """Every message in the channel that shows job `job_id`, in any state."""
    return [m for m in fake.channel_messages(channel_id) if mentions_job(m, job_id)]


def jobs_in_db(db_path: Path) -> dict[int, JSON]:
    """The jobs table as the bot left it, read through a connection of our own (WAL allows it)."""
    # closing(): a sqlite3 connection's own `with` only commits, and an open reader keeps the WAL file alive.
    with closing(sqlite3.connect(db_path)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
    return {int(row["id"]): dict(row) for row in rows}


def job_in_db(db_path: Path, job_id: int) -> JSON:
    return jobs_in_db(db_path)[job_id]


async def wait_job(db_path: Path, job_id: int, check: Callable[[JSON], bool], timeout: float = 10.0) -> JSON:
    """Wait until job `job_id`'s row satisfies `check`, and return it."""

    def probe() -> JSON | None:
        row = jobs_in_db(db_path).get(job_id)
        return row if row is not None and check(row) else None

    found: JSON = await eventually(probe, timeout=timeout)
    return found


def secret_from(simulator: Simulator) -> str:
    """The callback secret, read from the replyUrl useapi was given: `.../callbacks/useapi/<secret>/<job>`."""
    for call in simulator.requests:
        if call.body and isinstance(call.body.get("replyUrl"), str):
            return str(urlsplit(call.body["replyUrl"]).path.split("/")[3])
    raise AssertionError("no replyUrl was sent to useapi")


def stored_secret(db_path: Path) -> str:
    """The callback secret the bot made and kept in its database."""
    with closing(sqlite3.connect(db_path)) as db:
        row = db.execute("SELECT webhook_secret FROM relay_state").fetchone()
    return str(row[0])


def jobid_of(simulator: Simulator, job_id: int) -> str:
    """The useapi jobid the simulator gave to local job `job_id` (its replyRef)."""
    for jobid, job in simulator.jobs.items():
        if ref_number(job.get("replyRef")) == job_id:
            return jobid
    raise AssertionError(f"useapi has no job with replyRef {job_id}")


def gets_of(simulator: Simulator, jobid: str) -> int:
    """How many times the bot asked GET jobs/?jobid= about `jobid`."""
    return sum(1 for call in simulator.calls("jobs/") if call.query.get("jobid") == jobid)


def leaks(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Each (secret, line) where a secret value shows up in one of `texts`."""
    found: list[str] = []
    values = [s for s in secrets if s]
    for text in texts:
        for line in text.splitlines():
            for secret in values:
                if secret in line:
                    found.append(f"{secret[:4]}…: {line[:200]}")
    return found


def message_snapshot(fake: FakeDiscord) -> str:
    """Every message's visible state, for comparing before and after."""
    return json.dumps(
        [{k: m.get(k) for k in ("id", "content", "components", "attachments", "embeds")}
         for m in fake.messages.values()],
        sort_keys=True, default=str,
    )
