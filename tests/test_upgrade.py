"""A database written by the relay before the backend seam (87c342d), upgraded in place, keeps working; and
a button of a lost database never acts on a new database's job of the same number."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from bot.backends.useapi.simulator import Simulator
from bot.messages import DATABASE_RESET
from bot.store.sqlite.migrations import SCHEMA_VERSION
from tests.fakediscord import ALICE, CHANNEL_ID, GALLERY_ID, GUILD_ID, ROLE_ID, FakeDiscord
from tests.harness import InProcessBot, bot_env, database_identity, eventually, ref_number
from tests.resilience import jobs_in_db, manual_simulator, results_for, wait_job
from tests.test_buttons import private

UPGRADE = Path(__file__).resolve().parent / "upgrade"
JSON = dict[str, Any]


def fixture() -> JSON:
    facts: JSON = json.loads((UPGRADE / "fixture.json").read_text())
    return facts


TIMES = ("created_at", "updated_at", "submitted_at", "last_event_at", "finished_at")


def upgraded_copy(tmp_path: Path) -> Path:
    """A copy of the committed database, its clock moved on to now: it stands for a team's database at the moment
    of their upgrade, so its running job is as fresh as when the fixture was made (not timed out since)."""
    db = tmp_path / "relay.db"
    shutil.copyfile(UPGRADE / "relay-87c342d.db", db)
    with closing(sqlite3.connect(db)) as conn, conn:
        (newest,) = conn.execute("SELECT MAX(created_at) FROM jobs").fetchone()
        shift = time.time() - float(newest)
        conn.execute("UPDATE jobs SET " + ", ".join(f"{name} = {name} + ?" for name in TIMES),
                     (shift,) * len(TIMES))
    return db


def lose_database(db: Path) -> None:
    for path in db.parent.glob(f"{db.name}*"):
        path.unlink()


def button_calls(sim: Simulator) -> list[JSON]:
    return [dict(call.body or {}) for call in sim.calls("jobs/button")]


async def test_a_database_of_87c342d_is_upgraded_in_place_and_keeps_working(fake_discord: FakeDiscord,
                                                                            tmp_path: Path) -> None:
    facts = fixture()
    db = upgraded_copy(tmp_path)
    for message in facts["messages"]:
        fake_discord.seed_message(message)
    async with manual_simulator() as sim:
        sim.load_jobs(facts["useapi_jobs"])
        # As the team ran it: one slot, so the queued job waits for the running one.
        runner = InProcessBot(bot_env(fake_discord, sim, db, USEAPI_MAX_JOBS="1"))
        bot = await runner.start(fake_discord)
        try:
            with closing(sqlite3.connect(db)) as conn:
                assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            rows = jobs_in_db(db)
            assert [rows[n]["status"] for n in (1, 2, 3, 4, 5)] == ["completed"] * 3 + ["running", "queued"]
            assert all(row["backend"] == "useapi" for row in rows.values())
            assert rows[1]["backend_job_id"] == facts["jobids"]["1"]
            assert json.loads(rows[1]["buttons"])[0] == {"name": "U1", "ref": "U1"}
            assert json.loads(rows[1]["media"])[0]["content_type"] == "image/png"
            # The gallery copy made before the upgrade is remembered, so it is never made twice.
            assert rows[2]["gallery_message_id"] is not None
            # The team's settings, limits and Remix choices came along.
            settings = await bot.store.teams.guild_settings(GUILD_ID)
            assert (settings.policy, settings.policy_role_id, settings.gallery_channel_id) == ("role", ROLE_ID,
                                                                                              GALLERY_ID)
            assert (settings.daily_quota, settings.queue_limit) == (50, 8)
            alice = await bot.store.teams.member_limits(GUILD_ID, ALICE)
            assert (alice.daily_quota, alice.queue_limit) == (20, 4)
            assert await bot.store.teams.remix_enabled(ALICE)
            assert len(database_identity(db)) == 10

            # The running job is followed (its callbacks went to the old address: polling finds it done).
            await sim.complete(facts["jobids"]["4"])
            await eventually(lambda: results_for(fake_discord, 4), timeout=15)
            # The queued one runs next, under the reference it always had.
            jobid_5 = await eventually(lambda: next((j for j, b in sim.jobs.items() if b.get("replyRef") == "5"),
                                                    None), timeout=15)
            await sim.complete(jobid_5)
            await eventually(lambda: results_for(fake_discord, 5), timeout=15)

            # A button posted before the upgrade still works on the message that shows its job.
            grid = facts["grid"]
            record = await fake_discord.click(int(grid["message_id"]), grid["custom_ids"]["U2"], user=ALICE)
            assert "is on its way" in await private(record)
            sent = await eventually(lambda: button_calls(sim), timeout=10)
            assert sent[0]["jobid"] == facts["jobids"]["1"] and sent[0]["button"] == "U2"
            u2_jobid = await eventually(lambda: next(
                (j for j, b in sim.jobs.items() if ref_number(b.get("replyRef")) == 6), None), timeout=10)
            await sim.complete(u2_jobid)
            # Alice has Remix on: Vary opens her prompt first, as before the upgrade; Zoom Out goes at once.
            upscale = next(m for m in facts["messages"] if m["id"] == facts["upscale"]["message_id"])
            zoom = next(c["custom_id"] for row in upscale["components"] for c in row["components"]
                        if c.get("label") == "Zoom Out 2x")
            record = await fake_discord.click(int(upscale["id"]), zoom, user=ALICE)
            assert "is on its way" in await private(record)
            await eventually(lambda: len(button_calls(sim)) == 2, timeout=10)
            assert button_calls(sim)[1]["jobid"] == facts["jobids"]["2"]
            assert button_calls(sim)[1]["button"] == "Zoom Out 2x"
            vary = await fake_discord.click(int(upscale["id"]), facts["upscale"]["custom_ids"]["Vary (Strong)"],
                                            user=ALICE)
            assert (await vary.wait_response())["type"] == 9, "a modal, with her prompt to edit"
            assert fake_discord.spec_errors == []
        finally:
            await runner.stop()


async def test_an_old_button_never_acts_on_a_new_job_after_the_database_is_lost(fake_discord: FakeDiscord,
                                                                                tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    async with manual_simulator() as sim:
        env = bot_env(fake_discord, sim, db)
        first = InProcessBot(env)
        await first.start(fake_discord)
        try:
            await fake_discord.slash("imagine", {"prompt": "a red lighthouse"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running")
            await sim.complete(next(iter(sim.jobs)))
            await eventually(lambda: results_for(fake_discord, 1), timeout=15)
            (old_grid,) = results_for(fake_discord, 1)
        finally:
            await first.stop()

        # The disk is lost (an ephemeral dyno, a deleted volume): a new database starts at job #1 again.
        lose_database(db)
        second = InProcessBot(env)
        await second.start(fake_discord)
        try:
            await fake_discord.slash("imagine", {"prompt": "a blue cat"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running")
            new_jobid = next(j for j, b in sim.jobs.items() if b.get("prompt") == "a blue cat")
            await sim.complete(new_jobid)
            await eventually(lambda: [m for m in results_for(fake_discord, 1) if m["id"] != old_grid["id"]],
                             timeout=15)
            calls_before = len(sim.requests)

            u1 = next(c for row in old_grid["components"] for c in row["components"] if c.get("label") == "U1")
            answer = await private(await fake_discord.click(int(old_grid["id"]), u1["custom_id"], user=ALICE))
            assert answer == DATABASE_RESET
            assert sim.calls("jobs/button") == [] and len(sim.requests) == calls_before, "nothing was sent"
            assert [row["prompt"] for row in jobs_in_db(db).values()] == ["a blue cat"]
            assert fake_discord.spec_errors == []
        finally:
            await second.stop()


async def test_an_old_style_button_is_believed_only_on_the_message_recorded_for_its_job(
        fake_discord: FakeDiscord, tmp_path: Path) -> None:
    facts = fixture()
    db = upgraded_copy(tmp_path)
    for message in facts["messages"]:
        fake_discord.seed_message(message)
    # The same old-style button (job 1's U2), on a message the store never recorded for job 1.
    stray = dict(next(m for m in facts["messages"] if m["id"] == facts["forest"]["message_id"]))
    u2 = {"type": 2, "style": 2, "label": "U2", "custom_id": facts["grid"]["custom_ids"]["U2"]}
    stray.update(id=str(int(stray["id"]) + 7), components=[{"type": 1, "components": [u2]}])
    fake_discord.seed_message(stray)
    async with manual_simulator() as sim:
        sim.load_jobs(facts["useapi_jobs"])
        runner = InProcessBot(bot_env(fake_discord, sim, db, USEAPI_MAX_JOBS="3"))
        await runner.start(fake_discord)
        try:
            answer = await private(await fake_discord.click(int(stray["id"]), facts["grid"]["custom_ids"]["U2"],
                                                            user=ALICE))
            assert answer == DATABASE_RESET
            assert sim.calls("jobs/button") == []
            assert int(stray["channel_id"]) == CHANNEL_ID
        finally:
            await runner.stop()
