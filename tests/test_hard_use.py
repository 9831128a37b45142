"""The bot pushed the way busy teams push it: quick double clicks, channels it may not post in, hostile
callback bodies, previews while a job runs. Nothing spent in vain, nothing shown that the backend did not say."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, BOT_ROLE_ID, CHANNEL_ID, GUILD_ID, OWNER, FakeDiscord
from tests.harness import eventually
from tests.resilience import job_in_db, jobid_of, jobs_in_db, manual_simulator, secret_from, wait_job
from tests.test_answers import FAST
from tests.test_buttons import button_of, card, imagine, private, running_bot, sent, shows_job

ATTACH_FILES = 1 << 15


async def grid(fake: FakeDiscord, sim: Simulator, number: int = 1) -> dict[str, object]:
    await imagine(fake, "a lighthouse at dusk")
    await sim.complete(await eventually(lambda: next(iter(sim.executing()), None)))
    return await card(fake, number)


async def test_two_quick_clicks_on_a_one_shot_button_send_one_job(fake_discord: FakeDiscord,
                                                                  tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        shown = await grid(fake, sim)
        u1 = str(button_of(shown, "U1")["custom_id"])
        # Two clicks 20 ms apart, both in flight at once.
        first = asyncio.create_task(fake.click(int(str(shown["id"])), u1, user=ALICE))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(fake.click(int(str(shown["id"])), u1, user=ALICE))
        answers = [await private(await first), await private(await second)]
        (taken,) = [text for text in answers if "already on its way as job #2" in text]
        (filed,) = [text for text in answers if text.startswith("Job #2 is on its way")]
        assert "nothing new was sent" in taken and filed
        await asyncio.sleep(0.3)
        assert [body["button"] for body in sent(sim)] == ["U1"], "one Midjourney job for two clicks"
        assert not [m for m in fake.channel_messages(CHANNEL_ID) if shows_job(m, 3)]
        # Once that job came to nothing, the button may be pressed again.
        await sim.fail(jobid_of(sim, 2))
        await wait_job(tmp_path / "relay.db", 2, lambda row: row["status"] == "failed")
        again = await fake.click(int(str(shown["id"])), u1, user=ALICE)
        assert "is on its way" in await private(again)
        await eventually(lambda: len(sent(sim)) == 2)


async def test_a_channel_the_bot_cannot_post_in_spends_nothing(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        shown = await grid(fake, sim)
        guild = fake.guilds[GUILD_ID]
        for role in (GUILD_ID, BOT_ROLE_ID):  # @everyone and the bot's own role: Attach Files taken away
            guild.roles[role] &= ~ATTACH_FILES
        refused = await private(await imagine(fake, "a second lighthouse"))
        assert "Nothing was sent" in refused and "Attach Files" in refused
        click = await private(await fake.click(int(str(shown["id"])), str(button_of(shown, "V1")["custom_id"]),
                                               user=ALICE))
        assert "Attach Files" in click
        assert len(sim.calls("jobs/imagine")) == 1 and sent(sim) == []


async def test_a_result_discord_refuses_is_tried_a_few_times_then_marked_and_the_admins_told(
        fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        admin = await fake.slash("relay", {"channel": fake.guilds[GUILD_ID].channels[1]}, subcommand="admin-channel",
                                 user=fake.guilds[GUILD_ID].owner_id)
        await private(admin)
        record = await imagine(fake, "a lighthouse at dusk")
        await private(record)
        jobid = await eventually(lambda: next(iter(sim.executing()), None))
        # The bot's permissions in the channel go while the job runs: every post and edit there is refused.
        fake.fail_next("*", rf"/channels/{CHANNEL_ID}/messages", 403, times=100)
        await sim.complete(jobid)
        row = await wait_job(tmp_path / "relay.db", 1, lambda r: r["undelivered"] is not None, timeout=15)
        assert row["publish_failures"] == 5 and row["published"] == 1
        told = await record.wait_followup(2)
        assert "refuses to show it" in told["content"] and "/job 1" in told["content"]
        alerts = [m for m in fake.channel_messages(fake.guilds[GUILD_ID].channels[1]) if "Relay alert" in m["content"]]
        assert alerts and "Job #1" in alerts[0]["content"] and "permissions" in alerts[0]["content"]
        polls = len(fake.requests)
        await asyncio.sleep(1.0)
        assert not [r for r in fake.requests[polls:] if r.path.startswith(f"/channels/{CHANNEL_ID}/messages")], \
            "no more tries once it is marked"
        listed = await private(await fake.slash("jobs", user=ALICE))
        assert "⚠️ not posted" in listed
        shown = await fake.slash("job", {"jobid": "1"}, user=ALICE)
        await shown.wait_response()
        details = await shown.wait_followup()
        assert "Not posted in the channel" in details["content"] and details["embeds"]


async def test_callback_bodies_with_unusable_characters_are_refused(fake_discord: FakeDiscord,
                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST) as runner:
        await imagine(fake, "a lighthouse at dusk")
        db = tmp_path / "relay.db"
        await wait_job(db, 1, lambda row: row["status"] == "running")
        jobid = jobid_of(sim, 1)
        body = dict(sim.jobs[jobid])
        url = f"{runner.env['PUBLIC_URL']}/callbacks/useapi/{secret_from(sim)}/{body['replyRef']}"
        async with aiohttp.ClientSession() as http:
            for raw in (json.dumps({**body, "content": "\ud800 (40%)"}),
                        json.dumps({**body, "prompt": "a\u0000b"}),
                        json.dumps({**body, "extra": {"deep": ["\udfff"]}})):
                async with http.post(url, data=raw.encode("utf-8", "surrogatepass"),
                                     headers={"Content-Type": "application/json"}) as response:
                    assert response.status == 400
            async with http.post(url, json={**body, "newField": {"from": "a newer useapi"}}) as response:
                assert response.status == 200, "fields the relay does not read are allowed"
        assert job_in_db(db, 1)["status"] == "running"


async def test_the_working_message_shows_the_preview_the_backend_gives(fake_discord: FakeDiscord,
                                                                       tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        await imagine(fake, "a lighthouse at dusk")
        db = tmp_path / "relay.db"
        await wait_job(db, 1, lambda row: row["status"] == "running")
        jobid = jobid_of(sim, 1)
        await sim.progress(jobid, 40, preview=True)
        preview = sim.jobs[jobid]["attachments"][0]["url"]
        working = await fake.wait_for_message(
            lambda m: shows_job(m, 1) and "40%" in m["content"] and bool(m.get("embeds")))
        assert working["embeds"][0]["image"]["url"] == preview and not working.get("attachments")
        await sim.complete(jobid)
        result = await card(fake, 1)
        assert result["embeds"] == [] and result["attachments"], "the result replaces the preview"


async def test_a_video_result_is_posted_as_a_video_with_its_extend_buttons(fake_discord: FakeDiscord,
                                                                           tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        shown = await grid(fake, sim)
        await private(await fake.click(int(str(shown["id"])), str(button_of(shown, "U1")["custom_id"]), user=ALICE))
        await sim.complete(await eventually(lambda: next(iter(sim.executing()), None)))
        upscale = await card(fake, 2)
        animate_id = str(button_of(upscale, "Animate (High motion)")["custom_id"])
        animate = await fake.click(int(str(upscale["id"])), animate_id, user=ALICE)
        assert "is on its way" in await private(animate)
        await sim.complete(await eventually(lambda: next(iter(sim.executing()), None)))
        video = await card(fake, 3)
        (attachment,) = video["attachments"]
        assert attachment["filename"] == "job-3.mp4" and attachment["content_type"] == "video/mp4"
        assert fake.attachment_bytes(attachment)[4:8] == b"ftyp", "the MP4 itself, not an image"
        names = [c.get("label") for row in video["components"] for c in row["components"]]
        assert names == ["Extend (High motion)", "Extend (Low motion)"]


async def test_a_video_too_large_for_the_channel_shows_its_first_frame_and_says_why(fake_discord: FakeDiscord,
                                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    limit = fake.guilds[GUILD_ID].filesize_limit
    sim = Simulator(token="sim-token-0123456789", job_seconds=None, image_bytes=limit + 512 * 1024)
    await sim.start()
    try:
        async with running_bot(fake, sim, tmp_path, **FAST):
            shown = await grid(fake, sim)
            await private(await fake.click(int(str(shown["id"])), str(button_of(shown, "U1")["custom_id"]),
                                           user=ALICE))
            await sim.complete(await eventually(lambda: next(iter(sim.executing()), None)))
            upscale = await card(fake, 2)
            await private(await fake.click(int(str(upscale["id"])),
                                           str(button_of(upscale, "Animate (Low motion)")["custom_id"]), user=ALICE))
            await sim.complete(await eventually(lambda: next(iter(sim.executing()), None)))
            video = await card(fake, 3)
            (attachment,) = video["attachments"]
            assert attachment["filename"].endswith("-first-frame.png") and attachment["size"] <= limit
            assert fake.attachment_bytes(attachment).startswith(b"\x89PNG")
            assert "The video is too large for this channel" in video["content"]
            assert "http" not in video["content"].split("too large")[1], "no link to a file that will expire"
    finally:
        await sim.close()


async def test_a_member_deletes_a_result_and_an_admin_purges_a_history(fake_discord: FakeDiscord,
                                                                        tmp_path: Path) -> None:
    fake = fake_discord
    db = tmp_path / "relay.db"
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        shown = await grid(fake, sim)
        asked = await fake.slash("delete", {"job": "#1"}, user=BOB)
        assert "belongs to" in await private(asked), "only its owner (or a manager) deletes it"
        question = await fake.slash("delete", {"job": "#1"}, user=ALICE)
        first = await question.wait_response()
        assert "This cannot be undone" in first["data"]["content"]
        confirm = first["data"]["components"][0]["components"][0]
        asked_message = await question.wait_original(lambda m: True)
        await fake.click(int(asked_message["id"]), confirm["custom_id"], user=ALICE)
        answer = await question.wait_original(lambda m: "Removed job #1" in m.get("content", ""))
        # The backend's link to the result and the uploaded copy's.
        assert "1 message deleted" in answer["content"] and "2 result links forgotten" in answer["content"]
        assert int(str(shown["id"])) not in fake.messages and not answer.get("components")
        row = job_in_db(db, 1)
        assert row["message_id"] is None and row["image_url"] is None and row["media"] == "[]"
        assert row["prompt"] == "a lighthouse at dusk", "her own history keeps its prompt"

        await grid(fake, sim, 2)
        purge = await fake.slash("relay", {"member": ALICE}, subcommand="purge", user=OWNER)
        first = await purge.wait_response()
        assert "2 jobs" in first["data"]["content"]
        original = await purge.wait_original(lambda m: True)
        await fake.click(int(original["id"]), first["data"]["components"][0]["components"][0]["custom_id"],
                         user=OWNER)
        done = await purge.wait_original(lambda m: "Removed" in m.get("content", ""))
        assert "2 jobs" in done["content"] and "1 message deleted" in done["content"]
        assert all(row["prompt"] == "(removed)" for row in jobs_in_db(db).values())
        assert not [m for m in fake.channel_messages(CHANNEL_ID) if shows_job(m, 2)]
