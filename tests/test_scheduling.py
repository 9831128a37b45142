"""Fair scheduling, end to end: the shared Midjourney slots, round-robin between users, and the place in line
each waiting message shows, through the real bot, the fake Discord and a simulator that enforces maxJobs."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CAROL, CHANNEL_ID, OWNER, FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, bot_env, eventually, ref_number

JSON = dict[str, Any]
PLACE = re.compile(r"#(\d+) in line")


async def test_thirty_jobs_from_five_users_share_three_slots_fairly(fake_discord: FakeDiscord,
                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    dave = fake.add_user("dave").id
    users = [ALICE, BOB, CAROL, OWNER, dave]
    # A short job, so thirty of them through three slots take a few seconds.
    async with Simulator(token=SIM_TOKEN, job_seconds=0.3, progress_steps=1) as sim:
        runner = InProcessBot(bot_env(fake, sim, tmp_path / "relay.db", USEAPI_MAX_JOBS=3, USER_MAX_QUEUED=0))
        bot = await runner.start(fake)
        try:
            started = time.monotonic()
            # The worst case for a first-come-first-served queue: ALICE's ten land first, then the four others
            # send five each, all at once. First come first served, the first ten results would all be hers.
            await _submit_at_once(fake, [(ALICE, n) for n in range(10)])
            await _submit_at_once(fake, [(user, n) for user in users[1:] for n in range(5)])
            jobs: list[JSON] = await eventually(lambda: _all_final(sim, 30), timeout=30)
            elapsed = time.monotonic() - started

            assert sim.max_executing_seen <= 3, "never more than USEAPI_MAX_JOBS executing"
            assert sim.max_executing_seen == 3, "and the slots were used"
            assert sim.rejections_429 == 0, "the local queue waited instead of useapi refusing"
            assert [job["status"] for job in jobs] == ["completed"] * 30
            assert all(call.body and call.body["maxJobs"] == 3 for call in sim.calls("jobs/imagine"))
            # Every one is posted, as a result with its buttons.
            await eventually(lambda: len([m for m in fake.channel_messages(CHANNEL_ID) if m.get("components")]) == 30,
                             timeout=15)

            # Completion order, by owner, as useapi saw it: the users take turns.
            owners = {}
            for job in jobs:
                record = await bot.store.jobs.get(ref_number(job["replyRef"]) or 0)
                assert record is not None
                owners[job["jobid"]] = record.owner_id
            order = [owners[jobid] for jobid in _completion_order(sim)]
            assert len(set(order[:10])) >= 4, order
            # Nobody waits behind ALICE's batch: once the others arrive, each gets a turn before she gets
            # another (her first three took the free slots before anyone else had asked).
            assert all(order.index(user) < 8 for user in users), order
            # And she is not starved in turn: her ten are spread through the run, not all left for the end.
            assert order[:15].count(ALICE) >= 4, order
            print(f"\n30 jobs, 5 users, 3 slots: {elapsed:.2f}s; max executing {sim.max_executing_seen}; "
                  f"429s {sim.rejections_429}; completion order by user: "
                  f"{[users.index(owner) for owner in order]}")
            assert fake.spec_errors == []
        finally:
            await runner.stop()


async def _submit_at_once(fake: FakeDiscord, jobs: list[tuple[int, int]]) -> None:
    """Send one /imagine per (user, n) concurrently and wait until every one is filed."""
    commands = await asyncio.gather(*(
        fake.slash("imagine", {"prompt": f"picture {n} of {user}"}, user=user) for user, n in jobs
    ))
    for command in commands:
        assert (await command.wait_response())["type"] == 5
        assert "is on its way" in (await command.wait_followup(timeout=10))["content"]


def _all_final(sim: Simulator, count: int) -> list[JSON] | None:
    jobs = [job for job in sim.jobs.values() if job.get("status") in {"completed", "failed", "moderated"}]
    return jobs if len(jobs) >= count else None


def _completion_order(sim: Simulator) -> list[str]:
    """jobids in the order the simulator sent their completion callback."""
    seen: list[str] = []
    for _url, payload, _status in sim.callbacks:
        jobid = str(payload.get("jobid"))
        if payload.get("status") == "completed" and jobid not in seen:
            seen.append(jobid)
    return seen


async def test_waiting_messages_show_their_place_as_the_queue_moves(fake_discord: FakeDiscord,
                                                                   tmp_path: Path) -> None:
    fake = fake_discord
    # One slot, and jobs that run until the test completes them: the queue only moves when told to.
    async with Simulator(token=SIM_TOKEN, job_seconds=None) as sim:
        runner = InProcessBot(bot_env(fake, sim, tmp_path / "relay.db", USEAPI_MAX_JOBS=1,
                                      PROGRESS_EDIT_SECONDS=0.2))
        bot = await runner.start(fake)
        try:
            for n in range(1, 4):
                command = await fake.slash("imagine", {"prompt": f"alice {n}"}, user=ALICE)
                await command.wait_followup()  # filed, its message posted
            await eventually(lambda: len(sim.calls("jobs/imagine")) == 1)
            # alice 1 runs; alice 2 and 3 wait, at places 1 and 2.
            await eventually(lambda: _places(fake) == {"alice 2": 1, "alice 3": 2}, timeout=5)

            # BOB's one job goes before ALICE's waiting ones (she was served, he never was): both of hers move
            # down a place, and their messages say so.
            await (await fake.slash("imagine", {"prompt": "bob 1"}, user=BOB)).wait_response()
            await eventually(lambda: _places(fake) == {"bob 1": 1, "alice 2": 2, "alice 3": 3}, timeout=5)

            # The running job finishes: BOB's is sent, ALICE's move up.
            await sim.complete(next(iter(sim.jobs)))
            await eventually(lambda: len(sim.calls("jobs/imagine")) == 2)
            assert (sim.calls("jobs/imagine")[1].body or {})["prompt"] == "bob 1"
            await eventually(lambda: _places(fake) == {"alice 2": 1, "alice 3": 2}, timeout=5)

            # Coalesced: a burst of moves is at most a few edits per message, never one per scheduler pass.
            for prompt in ("alice 2", "alice 3"):
                message = _message(fake, prompt)
                edits = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith(f"/{message['id']}")]
                assert len(edits) <= 3, (prompt, len(edits))
            await eventually(lambda: bot.relay.edits.edits_run > 0)
            assert fake.spec_errors == []
        finally:
            await runner.stop()


def _message(fake: FakeDiscord, prompt: str) -> JSON:
    return next(m for m in fake.channel_messages(CHANNEL_ID) if f"**{prompt}**" in m.get("content", ""))


def _places(fake: FakeDiscord) -> dict[str, int]:
    """The place in line each waiting message shows now, by prompt."""
    places: dict[str, int] = {}
    for message in fake.channel_messages(CHANNEL_ID):
        found = PLACE.search(message.get("content", ""))
        prompt = re.match(r"\*\*(.+?)\*\*", message.get("content", ""))
        if found and prompt:
            places[prompt[1]] = int(found[1])
    return places
