"""Restarts: `kill -9` loses nothing, SIGTERM closes cleanly, one instance per database, stuck jobs time out.

The bot runs as `python -m bot` (SubprocessBot) where the process boundary is the point, in-process otherwise;
useapi is the simulator and Discord the fake, both in this process, so they keep going while the bot is down.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, EPHEMERAL, FakeDiscord
from tests.harness import ROOT, SIM_TOKEN, InProcessBot, SubprocessBot, bot_env, child_env, eventually
from tests.resilience import (
    cards_for,
    gets_of,
    job_in_db,
    jobid_of,
    jobs_in_db,
    leaks,
    manual_simulator,
    results_for,
    secret_from,
    wait_job,
    wait_results,
)
from tests.test_walking_skeleton import button_id


@pytest.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    """Jobs that take long enough to kill the bot in the middle of them."""
    simulator = Simulator(token=SIM_TOKEN, job_seconds=0.8, progress_steps=1)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def gone(fake: FakeDiscord) -> None:
    """Until the fake has noticed the bot's gateway connection is closed."""
    await eventually(lambda: not fake.gateway.active, timeout=10)


async def test_kill_9_with_jobs_running_and_queued_loses_nothing(fake_discord: FakeDiscord, slow_sim: Simulator,
                                                                 tmp_path: Path) -> None:
    fake, sim = fake_discord, slow_sim
    db = tmp_path / "relay.db"
    env = bot_env(fake, sim, db, USEAPI_MAX_JOBS="2", POLL_INTERVAL="0.3")
    bot = SubprocessBot(env, tmp_path / "bot.log")
    await bot.start(fake)
    try:
        # A result from before the crash, whose buttons must still work after it.
        await fake.slash("imagine", {"prompt": "an old lighthouse"}, user=ALICE)
        await eventually(lambda: results_for(fake, 1), timeout=15)

        for prompt, user in (("a red kite", ALICE), ("a blue kite", BOB), ("a green kite", ALICE),
                             ("a white kite", ALICE)):
            await fake.slash("imagine", {"prompt": prompt}, user=user)
        await eventually(lambda: len([j for j in sim.jobs.values() if j["status"] != "completed"]) == 2)
        rows = jobs_in_db(db)
        assert [rows[n]["status"] for n in (2, 3, 4, 5)] == ["running", "running", "queued", "queued"]

        await bot.kill()
        await gone(fake)
        # useapi finishes both while the bot is down: their callbacks find nobody and are not retried.
        running = [jobid_of(sim, 2), jobid_of(sim, 3)]
        for jobid in running:
            await sim.wait_final(jobid, timeout=5)
        await eventually(lambda: sum(1 for _, body, status in sim.callbacks
                                     if body["jobid"] in running and body["status"] == "completed"
                                     and status is None) == 2)
        assert results_for(fake, 2) == results_for(fake, 3) == []

        started = time.monotonic()
        await bot.start(fake)  # same database; the lock died with the killed process
        assert time.monotonic() - started < 15
        await wait_results(fake, (2, 3, 4, 5))
        # Re-read with GET jobs/?jobid= after the restart, since their callbacks were lost.
        assert all(gets_of(sim, jobid) >= 1 for jobid in running)
        # The queue kept its order: the two waiting jobs were sent after the restart, oldest first.
        prompts = [call.body["prompt"] for call in sim.calls("jobs/imagine") if call.body]
        assert set(prompts[1:3]) == {"a red kite", "a blue kite"}
        assert prompts[3:] == ["a green kite", "a white kite"]

        # The button on the result from before the crash works.
        old = results_for(fake, 1)[0]
        click = await fake.click(int(old["id"]), button_id(old, "U2"), user=ALICE)
        assert (await click.wait_response())["type"] == 5
        await eventually(lambda: results_for(fake, 6), timeout=15)
        (call,) = sim.calls("jobs/button")
        assert call.body is not None and call.body["button"] == "U2" and call.body["jobid"] == jobid_of(sim, 1)

        await asyncio.sleep(0.5)  # a duplicate would have shown up by now
        for job in range(1, 7):
            assert len(results_for(fake, job)) == 1, f"job {job} posted {len(results_for(fake, job))} times"
        assert len(sim.calls("jobs/imagine")) == 5, "no job was sent to useapi twice"
        assert all(row["published"] == 1 for row in jobs_in_db(db).values())
        assert fake.spec_errors == []
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()
    assert leaks([bot.log_text()], [fake.token, SIM_TOKEN, secret_from(sim)]) == []


async def test_sigterm_closes_cleanly_and_a_restart_picks_up(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        env = bot_env(fake, sim, db, POLL_INTERVAL="0.3")
        bot = SubprocessBot(env, tmp_path / "bot.log")
        await bot.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a paper boat"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running")

            assert await bot.terminate() == 0, bot.log_text()[-2000:]
            log = bot.log_text()
            assert "SIGTERM received" in log
            assert "Traceback" not in log and " ERROR " not in log
            assert not fake.gateway.active, "the gateway connection is closed"
            # The store was closed properly: SQLite folds its write-ahead log back in on the last close.
            assert wal_size(db) == 0
            with pytest.raises(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", int(env["PORT"]))
                writer.close()

            # The job finished while the bot was stopped; the next start publishes it.
            await sim.complete(jobid_of(sim, 1))
            await bot.start(fake)
            await eventually(lambda: results_for(fake, 1), timeout=15)
            assert len(cards_for(fake, 1)) == 1
            assert await bot.terminate() == 0
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()


async def test_a_second_instance_waits_for_the_first_then_exits_or_takes_over(fake_discord: FakeDiscord,
                                                                              sim: Simulator,
                                                                              tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    first = SubprocessBot(bot_env(fake, sim, db), tmp_path / "first.log")
    await first.start(fake)
    try:
        identifies = fake.gateway.identifies
        # An overlapping deploy with a short wait: it gives up with a clear line and exit status 3.
        env = child_env(bot_env(fake, sim, db, INSTANCE_LOCK_WAIT_SECONDS="0.5"))
        started = time.monotonic()
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=str(tmp_path), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        _, stderr = await asyncio.wait_for(second.communicate(), 20)
        assert second.returncode == 3
        text = stderr.decode()
        assert "another instance of the bot holds" in text  # said while waiting
        assert "error: another instance of the bot is still using this database" in text
        assert time.monotonic() - started < 10
        assert fake.gateway.identifies == identifies, "it never connected to Discord"

        # With a longer wait it takes over once the first one stops.
        third = SubprocessBot(bot_env(fake, sim, db, INSTANCE_LOCK_WAIT_SECONDS="20"), tmp_path / "third.log")
        await third.start(fake)  # returns at once: the first instance is still the one connected
        await eventually(lambda: "waiting up to 20s" in third.log_text(), timeout=15)
        assert fake.gateway.identifies == identifies
        assert await first.terminate() == 0
        await eventually(lambda: fake.gateway.identifies > identifies and fake.gateway.active, timeout=20)
        await fake.slash("imagine", {"prompt": "a handover"}, user=ALICE)
        await eventually(lambda: results_for(fake, 1), timeout=15)
        assert await third.terminate() == 0
    finally:
        for bot in (first, locals().get("third")):
            if isinstance(bot, SubprocessBot) and bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()


async def test_stuck_job_times_out_frees_its_slot_and_a_late_result_is_still_shown(
        fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        env = bot_env(fake, sim, db, USEAPI_MAX_JOBS="1", JOB_TIMEOUT_MINUTES="0.02", POLL_INTERVAL="0.2")
        runner = InProcessBot(env)
        await runner.start(fake)
        try:
            command = await fake.slash("imagine", {"prompt": "a stuck clock"}, user=ALICE)
            await fake.slash("imagine", {"prompt": "a waiting room"}, user=BOB)
            await wait_job(db, 1, lambda row: row["status"] == "running")
            assert job_in_db(db, 2)["status"] == "queued"

            # 0.02 minutes later the first is failed and its owner told; the slot goes to the second.
            failed = await wait_job(db, 1, lambda row: row["status"] == "failed", timeout=5)
            assert failed["error_kind"] == "timed_out"
            await eventually(lambda: any("No result from Midjourney after 1.2 seconds" in m["content"]
                                         for m in cards_for(fake, 1)))
            await eventually(lambda: any(m["flags"] & EPHEMERAL and "No result from Midjourney" in m["content"]
                                         for m in command.followups))
            # The relay no longer counts it against USEAPI_MAX_JOBS and sends the second job. (This useapi
            # still runs the first, so it answers 429 and the second waits its turn there; the real useapi
            # fails a job after 30 minutes, before the 35 of JOB_TIMEOUT_MINUTES.)
            await eventually(lambda: any(call.body and call.body.get("prompt") == "a waiting room"
                                         for call in sim.calls("jobs/imagine")), timeout=5)

            # Midjourney finishes the first after all: the result replaces the failure card.
            await sim.complete(jobid_of(sim, 1))
            await eventually(lambda: results_for(fake, 1), timeout=5)
            assert len(cards_for(fake, 1)) == 1
            assert job_in_db(db, 1)["status"] == "completed"
            await wait_job(db, 2, lambda row: row["status"] == "running", timeout=5)
            await sim.complete(jobid_of(sim, 2))
            await eventually(lambda: results_for(fake, 2), timeout=5)
            assert fake.spec_errors == []
        finally:
            await runner.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_restart_loop_benchmark_runs(store: str) -> None:
    """bench/restart_loop.py --small: one kill -9 cycle through the real entry point, nothing lost or doubled; on
    PostgreSQL too (`--postgres`: the restarted process takes the killed one's jobs over)."""
    options = ["--small", "--validate"] + (["--postgres"] if store == "postgres" else [])
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "restart_loop.py"), *options],
                            cwd=ROOT, env=child_env({}), capture_output=True, text=True, timeout=110, check=False,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "figure restart_loop.lost = 0 jobs" in result.stdout
    assert "figure restart_loop.duplicated = 0 posts" in result.stdout


async def test_a_submission_cut_short_by_kill_9_is_adopted_not_sent_twice(fake_discord: FakeDiscord,
                                                                        tmp_path: Path) -> None:
    fake = fake_discord
    # useapi takes a second to answer a POST: the bot dies while its jobs/imagine call is in flight, and
    # useapi accepts the job anyway.
    async with manual_simulator(post_delay=1.0) as sim:
        db = tmp_path / "relay.db"
        bot = SubprocessBot(bot_env(fake, sim, db, POLL_INTERVAL="0.3"), tmp_path / "bot.log")
        await bot.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a letter in flight"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "submitting", timeout=10)
            await bot.kill()
            await gone(fake)
            await eventually(lambda: sim.jobs, timeout=5)

            await bot.start(fake)
            await wait_job(db, 1, lambda row: row["status"] == "running", timeout=10)
            await sim.complete(jobid_of(sim, 1))
            await eventually(lambda: results_for(fake, 1), timeout=15)
            assert len(sim.calls("jobs/imagine")) == 1, "adopted from useapi's running jobs, not sent again"
            assert job_in_db(db, 1)["backend_job_id"] == jobid_of(sim, 1)
            assert len(results_for(fake, 1)) == 1
            assert "adopted" in bot.log_text()
            assert await bot.terminate() == 0
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()
