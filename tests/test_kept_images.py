"""The kept images' own rules on a real bot and database: a link to one is served only while its job needs it
fetched, its token never reaches the log, and a job whose images were not all kept is never sent."""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from bot.jobs import COMPLETED, HELD, QUEUED
from bot.logs import CHATTY_LOGGERS, quiet_chatty_loggers
from bot.messages import FILING_CUT_SHORT
from bot.relay.images import SERVED_AFTER_FINISH, served
from tests.backend_sims import SIMS, job_soon
from tests.fakediscord import ALICE, CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.harness import InProcessBot, eventually
from tests.test_buttons import card, private
from tests.test_toolset import PNG, requests_to


async def test_a_kept_image_is_served_while_its_job_needs_it_and_its_token_is_never_logged(
        fake_discord: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = fake_discord
    caplog.set_level(logging.DEBUG)
    # As `python -m bot` logs at DEBUG: the libraries that log every statement's parameters kept at INFO.
    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    quiet_chatty_loggers(logging.DEBUG)
    try:
        await _serve_and_log(fake, tmp_path, caplog)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def _serve_and_log(fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with SIMS["useapi"]() as sim:
        runner = InProcessBot(sim.env(fake, tmp_path / "relay.db"))
        bot = await runner.start(fake)
        try:
            await private(await fake.slash("imagine", {"prompt": "a fox", "image1": ("fox.png", PNG)}, user=ALICE))
            jobid = await job_soon(sim, 1)
            (body,) = requests_to(sim, "jobs/imagine")
            link = str(body["prompt"]).split()[0]
            token = link.rsplit("/", 1)[1].split(".")[0]
            async with aiohttp.ClientSession() as session:
                async with session.get(link) as response:
                    assert response.status == 200 and response.content_type == "image/png"
                    assert await response.read() == PNG
                for wrong in (link.replace(token, "A" * 43), link.rsplit(".", 1)[0] + ".exe", link + "x"):
                    async with session.get(wrong) as response:
                        assert response.status == 404
            await sim.complete(jobid)
            await card(fake, 1)
            (image,) = await bot.store.images.of_job(1)
            job = await bot.store.jobs.get(1)
            assert job is not None and job.status == COMPLETED and job.finished_at is not None
            name = link.rsplit("/", 1)[1]
            # Midjourney fetched it when the job started: an hour after it finished, it is served no more.
            assert await served(bot.store, name, job.finished_at + SERVED_AFTER_FINISH - 1) == image
            assert await served(bot.store, name, job.finished_at + SERVED_AFTER_FINISH + 1) is None
        finally:
            await runner.stop()
    assert token not in caplog.text
    assert "/images/***" in caplog.text


async def test_a_job_cut_short_while_its_images_were_kept_is_never_sent(fake_discord: FakeDiscord,
                                                                       tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    async with SIMS["mjproxy"]() as sim:
        env = sim.env(fake, db)
        first = InProcessBot(env)
        await first.start(fake)
        await first.stop()
        # As a crash leaves it between filing the job and keeping its images: held, with no image.
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("INSERT INTO jobs (guild_id, channel_id, owner_id, prompt, backend, status, not_before, "
                         "created_at, updated_at, action) VALUES (?, ?, ?, 'a fox', 'mjproxy', ?, ?, ?, ?, 'imagine')",
                         (GUILD_ID, CHANNEL_ID, ALICE, QUEUED, HELD, time.time(), time.time()))
            conn.commit()
        second = InProcessBot(env)
        bot = await second.start(fake)
        try:
            job = await eventually(lambda: _failed(bot, 1))
            assert job.error == FILING_CUT_SHORT
            await fake.wait_for_message(lambda m: "job #1" in m.get("content", "") and "stopped while keeping"
                                        in m.get("content", ""))
            assert sim.sent() == []
        finally:
            await second.stop()


async def _failed(bot: object, number: int) -> object:
    job = await bot.store.jobs.get(number)  # type: ignore[attr-defined]
    return job if job is not None and job.is_final else None
