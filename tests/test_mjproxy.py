"""What only mj-proxy has: its own queue (22), its word list (24), the two steps of a prompted press and a crash
between them, a task id that is a string of digits, admin commands it has no counterpart for, and a team
moving over from useapi with jobs in flight."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from tests.backend_sims import MjproxySim, Sent, bot_on, job_soon
from tests.fakediscord import ALICE, OWNER, FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, bot_env
from tests.ports import free_port
from tests.resilience import job_in_db, manual_simulator, wait_job
from tests.test_both_backends import grid, press
from tests.test_buttons import card, modal_input, private, shows_job

JSON = dict[str, Any]


@asynccontextmanager
async def proxy(**options: Any) -> AsyncIterator[MjproxySim]:
    async with MjproxySimulator(token=SIM_TOKEN, job_seconds=None, **options) as sim:
        yield MjproxySim(sim)



async def test_a_task_the_proxy_queues_shows_its_place_there(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy(max_running=1) as sim, bot_on(fake, sim, tmp_path, MJPROXY_MAX_JOBS="3"):
        await fake.slash("imagine", {"prompt": "a first lighthouse"}, user=ALICE)
        await job_soon(sim, 1)
        await fake.slash("imagine", {"prompt": "a second lighthouse"}, user=ALICE)
        waiting = await fake.wait_for_message(lambda m: shows_job(m, 2) and "own queue" in m["content"])
        assert "#1 in line there" in waiting["content"]
        assert job_in_db(tmp_path / "relay.db", 2)["status"] == "running", "held in flight: it takes a slot"


async def test_a_banned_word_is_named_to_the_asker_only(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        record = await fake.slash("imagine", {"prompt": "a forbidden garden"}, user=ALICE)
        declined = await card(fake, 1, lambda m: "🚫" in m["content"])
        assert "forbidden" not in declined["content"].split("·")[-1], "the card does not repeat the word"
        told = await record.wait_followup(2)
        assert "`forbidden`" in told["content"]
        assert [s.kind for s in sim.sent()] == ["imagine"], "not retried"


async def test_a_crash_between_the_two_steps_resumes_the_second_once(fake_discord: FakeDiscord,
                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    port = free_port()
    async with proxy() as sim:
        async with bot_on(fake, sim, tmp_path, port=port, BACKEND_BACKOFF_SECONDS="30",
                          BACKEND_BACKOFF_MAX_SECONDS="30"):
            shown = await grid(fake, sim)
            await private(await press(fake, shown, "U1"))
            await sim.complete(await job_soon(sim, 2))
            upscale = await card(fake, 2)
            # The modal step meets a proxy that does not answer; then the process dies before it tries again.
            sim.sim.inject("submit/modal", 503, times=1)
            opened = await press(fake, upscale, "Custom Zoom")
            await opened.wait_response()
            field, _ = modal_input(opened)
            await private(await fake.submit_modal(opened, {field: "a lighthouse at dusk --zoom 1.5"}, user=ALICE))
            row = await wait_job(db, 3, lambda r: r["backend_job_id"] is not None and r["status"] == "queued")
            modal_task = row["backend_job_id"]
            assert sim.sim.tasks[modal_task]["status"] == "MODAL"
        with closing(sqlite3.connect(db)) as conn:  # as a kill in the middle of the second step leaves it
            conn.execute("UPDATE jobs SET status = 'submitting' WHERE id = 3")
            conn.commit()
        async with bot_on(fake, sim, tmp_path, port=port):
            await wait_job(db, 3, lambda r: r["status"] == "running")
            await sim.complete(modal_task)
            assert "Custom Zoom of #2" in (await card(fake, 3))["content"]
        kinds = [(s.kind, s.button, s.prompt) for s in sim.sent() if s.kind != "imagine"]
        assert kinds == [("press", "U1", None), ("press", "Custom Zoom", None),
                         ("prompt", None, "a lighthouse at dusk --zoom 1.5"),
                         ("prompt", None, "a lighthouse at dusk --zoom 1.5")], "one press, its prompt given again"


async def test_an_unasked_modal_is_completed_with_the_parents_prompt(fake_discord: FakeDiscord,
                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        shown = await grid(fake, sim)
        sim.sim.set_account_remix(True)  # Remix turned on at the proxy's account: every V press waits for a modal
        assert "is on its way" in await private(await press(fake, shown, "V3"))
        variation = await job_soon(sim, 2)
        assert sim.sent()[-1] == Sent("prompt", "a lighthouse at dusk", parent=variation)
        await sim.complete(variation)
        await card(fake, 2)


async def test_a_failed_task_is_worded_moderation_only_when_it_is(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        await fake.slash("imagine", {"prompt": "a lighthouse"}, user=ALICE)
        await sim.sim.fail(await job_soon(sim, 1), "Sorry! Our AI moderators feel your prompt might be against our "
                                                   "community standards")
        await card(fake, 1, lambda m: "🚫" in m["content"])
        await fake.slash("imagine", {"prompt": "another lighthouse"}, user=ALICE)
        await sim.sim.fail(await job_soon(sim, 2), "Midjourney timed out on its side")
        failed = await card(fake, 2, lambda m: "❌" in m["content"])
        assert "Midjourney timed out on its side" in failed["content"]


async def test_a_long_task_id_is_the_proxys_and_a_short_number_is_ours(fake_discord: FakeDiscord,
                                                                       tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        await grid(fake, sim)
        task_id = await job_soon(sim, 1)
        assert task_id.isdigit() and len(task_id) > 12
        by_task = await fake.slash("job", {"jobid": task_id}, user=ALICE)
        await by_task.wait_response()
        assert "**Job #1**" in (await by_task.wait_followup())["content"]
        by_number = await fake.slash("job", {"jobid": "#1"}, user=ALICE)
        await by_number.wait_response()
        assert "**Job #1**" in (await by_number.wait_followup())["content"]
        pressed = await fake.slash("button", {"jobid": task_id, "button": "U4"}, user=ALICE)
        assert "is on its way" in await private(pressed)
        await job_soon(sim, 2)


async def test_admin_commands_without_a_counterpart_say_where_to_act(fake_discord: FakeDiscord,
                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        remix = await private(await fake.slash("relay", {"state": "on"}, subcommand="remix", user=OWNER))
        reset = await private(await fake.slash("relay", subcommand="reset", user=OWNER))
        for answer in (remix, reset):
            assert "mj-proxy" in answer and "admin console" in answer
        status = await private(await fake.slash("relay", subcommand="status", user=OWNER))
        assert "**Backend:** the mj-proxy" in status and "**Account:** ✅ healthy" in status


async def test_moving_from_useapi_ends_its_unfinished_jobs_and_its_buttons_say_why(fake_discord: FakeDiscord,
                                                                                   tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    async with manual_simulator() as old:
        runner = InProcessBot(bot_env(fake, old, db, PROGRESS_EDIT_SECONDS="0.05"))
        await runner.start(fake)
        try:
            await fake.slash("imagine", {"prompt": "a finished harbour"}, user=ALICE)
            await wait_job(db, 1, lambda r: r["status"] == "running")
            await old.complete(next(iter(old.executing())))
            old_grid = await card(fake, 1)
            await fake.slash("imagine", {"prompt": "an unfinished harbour"}, user=ALICE)
            await wait_job(db, 2, lambda r: r["status"] == "running")
        finally:
            await runner.stop()
    async with proxy() as sim, bot_on(fake, sim, tmp_path):
        ended = await card(fake, 2, lambda m: "❌" in m["content"])
        assert "sent through useapi, which this bot is no longer configured for" in ended["content"]
        answer = await private(await press(fake, old_grid, "U1"))
        assert "useapi, a backend this bot is no longer configured for" in answer and "Nothing was sent" in answer
        listed = await private(await fake.slash("jobs", user=ALICE))
        assert "#1" in listed and "#2" in listed, "old results stay viewable"
        await asyncio.sleep(0)
        assert sim.sent() == []


async def test_polling_reads_every_running_task_in_one_request(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with proxy() as sim, bot_on(fake, sim, tmp_path, callbacks=False, POLL_INTERVAL="0.3"):
        for number in (1, 2, 3):
            await fake.slash("imagine", {"prompt": f"lighthouse {number}"}, user=ALICE)
            await job_soon(sim, number)
        await wait_job(tmp_path / "relay.db", 3, lambda r: r["status"] == "running")
        before = len(sim.sim.requests)
        await asyncio.sleep(1.0)
        reads = [r for r in sim.sim.requests[before:] if "/task/" in r.path]
        assert reads and all(r.path.endswith("task/list-by-condition") for r in reads)
        assert all(len((r.body or {}).get("ids", [])) == 3 for r in reads), "one request a pass, for all three"


async def test_a_proxy_without_a_task_list_says_a_duplicate_is_possible(fake_discord: FakeDiscord, tmp_path: Path,
                                                                        caplog: Any) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    port = free_port()
    async with proxy() as sim:
        async with bot_on(fake, sim, tmp_path, port=port):
            await fake.slash("imagine", {"prompt": "a lighthouse"}, user=ALICE)
            await wait_job(db, 1, lambda r: r["status"] == "running")
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("UPDATE jobs SET status = 'submitting', backend_job_id = NULL WHERE id = 1")
            conn.commit()
        sim.sim.inject("task/list", 404, times=5)
        async with bot_on(fake, sim, tmp_path, port=port):
            await wait_job(db, 1, lambda r: r["status"] == "running")
            assert any("runs twice" in record.getMessage() for record in caplog.records)
            assert [s.kind for s in sim.sent()] == ["imagine", "imagine"]
