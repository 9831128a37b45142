"""The flows every backend has, one test body each, run on useapi v2 and on mj-proxy: the real bot, the fake
Discord checking every body against Discord's spec, each backend's simulator keeping its own contract."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.jobs import ErrorKind
from tests.backend_sims import ATTACKER_IMAGE, BotSim, Sent, bot_on, job_soon
from tests.fakediscord import ALICE, BOB, CHANNEL_ID, FakeDiscord, InteractionRecord
from tests.harness import InProcessBot, database_identity, eventually
from tests.ports import free_port
from tests.resilience import cards_for, job_in_db, results_for, stored_secret, wait_job
from tests.test_buttons import button_of, card, modal_input, names, private, shows_job

JSON = dict[str, Any]




async def grid(fake: FakeDiscord, sim: BotSim, number: int = 1, prompt: str = "a lighthouse at dusk") -> JSON:
    await fake.slash("imagine", {"prompt": prompt}, user=ALICE)
    await sim.complete(await job_soon(sim, number))
    return await card(fake, number)


async def press(fake: FakeDiscord, message: JSON, name: str, user: int = ALICE) -> InteractionRecord:
    return await fake.click(int(message["id"]), str(button_of(message, name)["custom_id"]), user=user)


def presses(sim: BotSim) -> list[Sent]:
    return [sent for sent in sim.sent() if sent.kind == "press"]


@pytest.mark.parametrize("callbacks", [True, False], ids=["callbacks", "polling"])
async def test_imagine_then_upscale(fake_discord: FakeDiscord, backend: BotSim, tmp_path: Path,
                                    callbacks: bool) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path, callbacks=callbacks):
        record = await fake.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ALICE)
        assert (await record.wait_response())["type"] == 5
        jobid = await job_soon(backend, 1)
        await backend.progress(jobid, 40)
        await fake.wait_for_message(lambda m: shows_job(m, 1) and "40%" in m["content"])
        await backend.complete(jobid)
        shown = await card(fake, 1)
        assert names(shown) == backend.button_names(jobid)
        assert shown["attachments"][0]["filename"].endswith(".png")
        (imagined,) = backend.sent()
        identity = database_identity(tmp_path / "relay.db")
        assert (imagined.kind, imagined.prompt, imagined.ref) == ("imagine", "a lighthouse at dusk", f"{identity}-1")

        assert "is on its way" in await private(await press(fake, shown, "U1"))
        upscale_id = await job_soon(backend, 2)
        await backend.complete(upscale_id)
        upscale = await card(fake, 2)
        assert "U1 of #1" in upscale["content"] and "Vary (Strong)" in names(upscale)
        assert [(s.button, s.parent) for s in presses(backend)] == [("U1", jobid)]


async def test_every_kind_of_button_reaches_the_backend_as_itself(fake_discord: FakeDiscord, backend: BotSim,
                                                                  tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path, USER_MAX_QUEUED="0", USEAPI_MAX_JOBS="10", MJPROXY_MAX_JOBS="10"):
        shown = await grid(fake, backend)
        for name in ("V1", "🔄", "U2"):
            assert "is on its way" in await private(await press(fake, shown, name))
        upscale_id = await job_soon(backend, 4)
        await backend.complete(upscale_id)
        upscale = await card(fake, 4)
        for name in ("Zoom Out 2x", "⬅️", "Vary (Subtle)"):
            assert "is on its way" in await private(await press(fake, upscale, name))
        await eventually(lambda: len(presses(backend)) == 6)
        assert [s.button for s in presses(backend)] == ["V1", "🔄", "U2", "Zoom Out 2x", "⬅️", "Vary (Subtle)"]


async def test_custom_zoom_asks_for_its_prompt_and_sends_it(fake_discord: FakeDiscord, backend: BotSim,
                                                            tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        shown = await grid(fake, backend)
        await private(await press(fake, shown, "U1"))
        await backend.complete(await job_soon(backend, 2))
        upscale = await card(fake, 2)
        opened = await press(fake, upscale, "Custom Zoom")
        await opened.wait_response()
        field, default = modal_input(opened)
        assert default.endswith("--zoom 2")
        submitted = await fake.submit_modal(opened, {field: "a lighthouse at dusk --zoom 1.5"}, user=ALICE)
        assert "is on its way" in await private(submitted)
        await job_soon(backend, 3)
        sent = [s for s in backend.sent() if s.kind in ("press", "prompt")]
        # One job for the member: useapi takes the prompt with the press, mj-proxy in its modal's second step.
        assert sent[-1].prompt == "a lighthouse at dusk --zoom 1.5"
        assert [s.button for s in presses(backend)][-1] == "Custom Zoom"
        zoomed = await job_soon(backend, 3)
        await backend.complete(zoomed)
        assert "Custom Zoom of #2" in (await card(fake, 3))["content"]


async def test_a_member_with_remix_on_edits_the_prompt_first(fake_discord: FakeDiscord, backend: BotSim,
                                                             tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        await private(await fake.slash("remix", {"state": "on"}, user=ALICE))
        shown = await grid(fake, backend)
        opened = await press(fake, shown, "V2")
        await opened.wait_response()
        field, default = modal_input(opened)
        assert default == "a lighthouse at dusk"
        submitted = await fake.submit_modal(opened, {field: "a lighthouse at dawn"}, user=ALICE)
        assert "is on its way" in await private(submitted)
        await job_soon(backend, 2)
        assert [s for s in backend.sent() if s.kind != "imagine"][-1].prompt == "a lighthouse at dawn"


async def test_an_upscale_already_made_is_linked_and_nothing_is_sent(fake_discord: FakeDiscord, backend: BotSim,
                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        shown = await grid(fake, backend)
        await private(await press(fake, shown, "U3"))
        await backend.complete(await job_soon(backend, 2))
        upscale = await card(fake, 2)
        again = await private(await press(fake, shown, "U3"))
        assert "already made" in again and str(upscale["id"]) in again
        assert len(presses(backend)) == 1


async def test_full_slots_wait_and_the_job_goes_later(fake_discord: FakeDiscord, backend: BotSim,
                                                      tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path, BACKEND_RETRY_SECONDS="0.3"):
        backend.refuse_next(ErrorKind.BUSY)
        await fake.slash("imagine", {"prompt": "a busy harbour"}, user=ALICE)
        await fake.wait_for_message(lambda m: shows_job(m, 1) and "busy" in m["content"].lower())
        await backend.complete(await job_soon(backend, 1))
        await card(fake, 1)
        assert [s.kind for s in backend.sent()] == ["imagine", "imagine"], "sent again once, after the wait"


async def test_a_refused_prompt_says_so_and_the_asker_hears_why(fake_discord: FakeDiscord, backend: BotSim,
                                                                tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        record = await fake.slash("imagine", {"prompt": "a forbidden thing"}, user=ALICE)
        declined = await card(fake, 1, lambda m: "🚫" in m["content"])
        assert "declined" in declined["content"]
        told = await record.wait_followup(2)
        assert "declined this request" in told["content"]
        assert job_in_db(tmp_path / "relay.db", 1)["status"] == "moderated"


async def test_forged_repeated_and_stale_callbacks_change_nothing(fake_discord: FakeDiscord, backend: BotSim,
                                                                  tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path, POLL_INTERVAL="60") as runner:
        await fake.slash("imagine", {"prompt": "a quiet harbour"}, user=ALICE)
        jobid = await job_soon(backend, 1)
        await wait_job(tmp_path / "relay.db", 1, lambda row: row["status"] == "running")
        url = callback_url(runner, backend, tmp_path, 1)
        async with aiohttp.ClientSession() as http:
            reads = backend.reads(jobid)
            for _ in range(3):
                assert await post(http, url, backend.forged_completion(jobid)) == 202
            await eventually(lambda: backend.reads(jobid) > reads)
            await asyncio.sleep(0.3)
            assert job_in_db(tmp_path / "relay.db", 1)["status"] == "running", "the backend says it still runs"
            assert all(ATTACKER_IMAGE not in json.dumps(m) for m in fake.messages.values())
            for percent in (60, 60, 30):
                assert await post(http, url, backend.progress_body(jobid, percent)) == 200
            assert job_in_db(tmp_path / "relay.db", 1)["progress"] == 60, "progress only moves forward"
            await backend.complete(jobid)
            await eventually(lambda: results_for(fake, 1))
            settled = backend.reads(jobid)
            assert await post(http, url, backend.forged_completion(jobid)) == 200, "a repeat of a finished job"
            assert backend.reads(jobid) == settled
            assert await post(http, url.rsplit("/", 1)[0] + "/0123456789-1", backend.progress_body(jobid, 70)) == 404
        assert len(results_for(fake, 1)) == 1 and ATTACKER_IMAGE not in json.dumps(results_for(fake, 1))


async def test_an_outage_is_waited_out(fake_discord: FakeDiscord, backend: BotSim, tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        backend.down(True)
        await fake.slash("imagine", {"prompt": "a lighthouse in fog"}, user=ALICE)
        await fake.wait_for_message(lambda m: shows_job(m, 1) and "unreachable" in m["content"])
        backend.down(False)
        await backend.complete(await job_soon(backend, 1))
        await card(fake, 1)
        assert len(results_for(fake, 1)) == 1


async def test_cancel_with_a_reaction_a_queued_and_a_running_job(fake_discord: FakeDiscord, backend: BotSim,
                                                                 tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    limits = {"USEAPI_MAX_JOBS": "1", "MJPROXY_MAX_JOBS": "1"}
    async with bot_on(fake, backend, tmp_path, **limits):
        await fake.slash("imagine", {"prompt": "a running river"}, user=ALICE)
        running = await job_soon(backend, 1)
        await fake.slash("imagine", {"prompt": "a waiting mountain"}, user=ALICE)
        queued = await fake.wait_for_message(lambda m: shows_job(m, 2) and "Queued" in m["content"])
        # Someone else's ❌ changes nothing.
        await fake.react(int(queued["id"]), "❌", user=BOB)
        await asyncio.sleep(0.3)
        assert job_in_db(db, 2)["status"] == "queued"
        await fake.react(int(queued["id"]), "❌", user=ALICE)
        await wait_job(db, 2, lambda row: row["status"] == "cancelled")
        assert "Cancelled by its owner before it was sent" in (await card(fake, 2, lambda m: "❌" in m["content"]))[
            "content"]
        assert [s.prompt for s in backend.sent()] == ["a running river"], "nothing sent for the queued one"
        working = cards_for(fake, 1)[0]
        await fake.react(int(working["id"]), "❌", user=ALICE)
        await wait_job(db, 1, lambda row: row["status"] == "cancelled")
        assert backend.cancels() == [running]
        quota = await private(await fake.slash("quota", user=ALICE))
        assert "1 job sent" in quota, "the one cancelled before it was sent costs no quota"
        assert fake.reactions.get((int(queued["id"]), "❌")) == set(), "the ❌ is taken back"


async def test_a_submission_cut_short_is_adopted_not_sent_twice(fake_discord: FakeDiscord, backend: BotSim,
                                                                tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    port = free_port()  # the same PUBLIC_URL after the restart, as an operator's is
    async with bot_on(fake, backend, tmp_path, port=port):
        await fake.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ALICE)
        jobid = await job_soon(backend, 1)
        await wait_job(db, 1, lambda row: row["status"] == "running")
    # What a crash between the backend's answer and its recording leaves: the backend runs the job under our
    # reference, the store still has it as being sent.
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE jobs SET status = 'submitting', backend_job_id = NULL WHERE id = 1")
        conn.commit()
    async with bot_on(fake, backend, tmp_path, port=port):
        await wait_job(db, 1, lambda row: row["status"] == "running" and row["backend_job_id"] == jobid)
        await backend.complete(jobid)
        await card(fake, 1)
        assert [s.kind for s in backend.sent()] == ["imagine"], "adopted, not sent again"


def callback_url(runner: InProcessBot, sim: BotSim, tmp_path: Path, number: int) -> str:
    secret = stored_secret(tmp_path / "relay.db")
    return (f"{runner.env['PUBLIC_URL']}/callbacks/{sim.name}/{secret}/"
            f"{database_identity(tmp_path / 'relay.db')}-{number}")


async def post(http: aiohttp.ClientSession, url: str, body: JSON) -> int:
    async with http.post(url, json=body) as response:
        await response.read()
        return response.status


def messages_of(fake: FakeDiscord) -> list[JSON]:
    return fake.channel_messages(CHANNEL_ID)
