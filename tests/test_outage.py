"""Outages: useapi down in the middle of a queue, and Discord refusing, losing or failing the bot's messages.

The relay must drop nothing: queued jobs wait (and say so), results wait for Discord, and a result whose
message a moderator deleted comes back once, in a new message, even across a crash at the worst moment.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CHANNEL_ID, FakeDiscord
from tests.harness import InProcessBot, SubprocessBot, bot_env, eventually
from tests.resilience import (
    cards_for,
    is_result,
    job_in_db,
    jobid_of,
    jobs_in_db,
    manual_simulator,
    mentions_job,
    results_for,
    wait_job,
    wait_results,
)

# A minute-long outage at 1/30 scale: 2 s down, with the backoff (2 s doubling to 60 s) scaled alike.
SCALE = 1 / 30
OUTAGE_SECONDS = 60 * SCALE
MESSAGES = r"/channels/\d+/messages/\d+"


def shown_text(fake: FakeDiscord, job_id: int) -> list[str]:
    """Everything the bot ever wrote on job `job_id`'s cards: posts and edits, as sent."""
    texts = []
    for request in fake.requests:
        body = request.json if isinstance(request.json, dict) else {}
        content = body.get("content")
        if request.method in ("POST", "PATCH") and isinstance(content, str) and mentions_job(body, job_id):
            texts.append(content)
    return texts


async def test_useapi_outage_in_the_middle_of_a_queue(fake_discord: FakeDiscord, sim: Simulator,
                                                     tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    env = bot_env(fake, sim, db, USEAPI_MAX_JOBS="1", POLL_INTERVAL="0.3", PROGRESS_EDIT_SECONDS="0.05",
                  USEAPI_BACKOFF_SECONDS=str(2 * SCALE), USEAPI_BACKOFF_MAX_SECONDS=str(60 * SCALE))
    runner = InProcessBot(env)
    await runner.start(fake)
    try:
        prompts = [("a lantern", ALICE), ("a compass", BOB), ("a map", ALICE), ("a rope", BOB)]
        for prompt, user in prompts:
            await fake.slash("imagine", {"prompt": prompt}, user=user)
        await wait_job(db, 1, lambda row: row["status"] == "running")

        sim.set_outage(True)  # every useapi call answers 503 with a proxy's HTML page
        await asyncio.sleep(OUTAGE_SECONDS)
        rows = jobs_in_db(db)
        assert all(row["status"] in ("queued", "submitting", "running", "completed") for row in rows.values())
        sim.set_outage(False)

        await wait_results(fake, range(1, 5), timeout=20)
        await asyncio.sleep(0.3)
        for job in range(1, 5):
            assert len(results_for(fake, job)) == 1
        assert all(row["status"] == "completed" and row["published"] == 1 for row in jobs_in_db(db).values())
        assert len(sim.jobs) == 4, "each job reached useapi exactly once"
        assert sim.max_executing_seen == 1, "the slot limit held through the retries"
        # The waiting jobs said why they were waiting, and stopped saying it once useapi was back.
        for job in range(2, 5):
            texts = shown_text(fake, job)
            assert any("Waiting for useapi" in text for text in texts), f"job {job} never said it: {texts}"
            assert "Waiting for useapi" not in cards_for(fake, job)[0]["content"]
        assert fake.spec_errors == []
    finally:
        await runner.stop()


async def test_result_of_a_deleted_message_is_posted_as_a_new_one(fake_discord: FakeDiscord,
                                                                  tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        runner = InProcessBot(bot_env(fake, sim, db))
        await runner.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a sandcastle"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running" and row["message_id"] is not None)
            working = job_in_db(db, 1)["message_id"]
            fake.delete_message(CHANNEL_ID, working)  # a moderator tidies the channel

            await sim.complete(jobid_of(sim, 1))
            await eventually(lambda: results_for(fake, 1), timeout=10)
            await asyncio.sleep(0.3)
            (result,) = cards_for(fake, 1)
            assert is_result(result) and int(result["id"]) != working
            row = await wait_job(db, 1, lambda r: r["published"] == 1)
            assert row["message_id"] == int(result["id"])
            assert fake.spec_errors == []
        finally:
            await runner.stop()


async def test_crash_between_the_new_message_and_the_result_posts_it_once(fake_discord: FakeDiscord,
                                                                          tmp_path: Path) -> None:
    """The window the store closes: a new message is posted because the old one was deleted, then the bot dies.

    The new message's id is stored before the result goes into it, so the restarted bot edits that message
    rather than posting yet another.
    """
    fake = fake_discord
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        # Polling rarely: the result is published once, by the callback, and not retried before the crash.
        bot = SubprocessBot(bot_env(fake, sim, db, POLL_INTERVAL="30"), tmp_path / "bot.log")
        await bot.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a tide pool"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running" and row["message_id"] is not None,
                           timeout=15)
            working = job_in_db(db, 1)["message_id"]
            fake.delete_message(CHANNEL_ID, working)
            # Discord fails the edit that would put the result into the new message.
            fake.fail_next("PATCH", rf"/channels/\d+/messages/(?!{working}$)\d+$", 503)

            await sim.complete(jobid_of(sim, 1))
            row = await wait_job(db, 1, lambda r: r["status"] == "completed" and r["message_id"] != working,
                                 timeout=10)
            assert row["published"] == 0
            await eventually(lambda: any(r.status == 503 for r in fake.requests))
            await bot.kill()
            await eventually(lambda: not fake.gateway.active)
            (placeholder,) = cards_for(fake, 1)
            assert int(placeholder["id"]) == row["message_id"] and not is_result(placeholder)

            await bot.start(fake)
            await eventually(lambda: results_for(fake, 1), timeout=15)
            await asyncio.sleep(0.5)
            (result,) = cards_for(fake, 1)
            assert int(result["id"]) == row["message_id"], "the recorded message became the result"
            assert job_in_db(db, 1)["published"] == 1
            assert fake.spec_errors == []
            assert await bot.terminate() == 0
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()


async def test_missing_permission_and_discord_5xx_are_retried_and_the_result_kept(fake_discord: FakeDiscord,
                                                                                  tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        runner = InProcessBot(bot_env(fake, sim, db, POLL_INTERVAL="0.3"))
        await runner.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a snow globe"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running" and row["message_id"] is not None)
            # Someone took the bot's permissions away; later Discord itself has a bad moment.
            fake.fail_next("PATCH", MESSAGES, 403, times=3)
            fake.fail_next("PATCH", MESSAGES, 503, times=2)

            await sim.complete(jobid_of(sim, 1))
            await eventually(lambda: sum(1 for r in fake.requests if r.method == "PATCH" and r.status == 403) >= 1)
            row = job_in_db(db, 1)
            assert row["status"] == "completed" and row["published"] == 0
            # Meanwhile the result is kept, and its owner can see it with /job.
            assert json.loads(row["job_json"])["attachments"][0]["url"]
            lookup = await fake.slash("job", {"jobid": "1"}, user=ALICE)
            await eventually(lambda: lookup.followups, timeout=10)
            shown = lookup.followups[0]
            assert shown["embeds"] and shown["embeds"][0]["image"]["url"]
            assert shown["components"], "its buttons come with it"

            await eventually(lambda: results_for(fake, 1), timeout=15)
            failed = [r.status for r in fake.requests if r.method == "PATCH" and r.status in (403, 503)]
            assert failed == [403, 403, 403, 503, 503]
            await asyncio.sleep(0.3)
            assert len(cards_for(fake, 1)) == 1 and len(results_for(fake, 1)) == 1
            assert job_in_db(db, 1)["published"] == 1
            assert fake.spec_errors == []
        finally:
            await runner.stop()
