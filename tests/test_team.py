"""Teams, end to end through the real bot, the fake Discord and the useapi simulator: who may click what,
/jobs and /job, limits and quotas, the gallery, /relay status, and servers kept apart."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.backends.useapi.simulator import Simulator
from bot.client import RelayBot
from tests.fakediscord import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL_ID,
    EPHEMERAL,
    GALLERY_ID,
    OWNER,
    ROLE_ID,
    FakeDiscord,
    FakeGuild,
    InteractionRecord,
)
from tests.fakediscord.models import EVERYONE_PERMISSIONS
from tests.harness import SIM_TOKEN, InProcessBot, bot_env, eventually

JSON = dict[str, Any]
GUILD2 = 1_100_000_000_000_009_100
CHANNEL2 = 1_100_000_000_000_009_200
OWNER2 = 1_100_000_000_000_009_300


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator with quicker jobs than conftest's: these tests wait for many results one after another."""
    async with Simulator(token=SIM_TOKEN, job_seconds=0.15, progress_steps=1) as simulator:
        yield simulator


@asynccontextmanager
async def running(fake: FakeDiscord, sim: Simulator, tmp_path: Path, **extra: Any) -> AsyncIterator[RelayBot]:
    runner = InProcessBot(bot_env(fake, sim, tmp_path / "relay.db", **extra))
    bot = await runner.start(fake)
    try:
        yield bot
    finally:
        await runner.stop()
    assert fake.spec_errors == []


def button_id(message: JSON, label: str) -> str:
    for row in message.get("components", []):
        for component in row["components"]:
            if component.get("label") == label:
                return str(component["custom_id"])
    raise AssertionError(f"no {label} button on message {message['id']}: {message.get('components')}")


def result_of(job_number: int) -> Callable[[JSON], bool]:
    return lambda m: f"job #{job_number}" in m.get("content", "") and bool(m.get("components"))


async def private_answer(record: InteractionRecord) -> str:
    """The text of the bot's private answer: an ephemeral response, or the follow-up after a deferral."""
    first = await record.wait_response()
    if first["type"] == 4:
        assert first["data"]["flags"] & EPHEMERAL, first
        return str(first["data"]["content"])
    assert first["type"] == 5 and first["data"]["flags"] & EPHEMERAL, first
    followup = await record.wait_followup()
    assert followup["flags"] & EPHEMERAL, followup
    return str(followup["content"])


async def imagine(fake: FakeDiscord, prompt: str, user: int, **where: Any) -> str:
    return await private_answer(await fake.slash("imagine", {"prompt": prompt}, user=user, **where))


async def relay(fake: FakeDiscord, subcommand: str, options: dict[str, Any] | None = None, *, user: int,
                **where: Any) -> str:
    return await private_answer(await fake.slash("relay", options or {}, subcommand=subcommand, user=user, **where))


def button_calls(sim: Simulator) -> list[str]:
    return [str((call.body or {}).get("button")) for call in sim.calls("jobs/button")]


async def test_click_policies_owner_role_everyone_and_managers(fake_discord: FakeDiscord, sim: Simulator,
                                                               tmp_path: Path) -> None:
    fake = fake_discord
    async with running(fake, sim, tmp_path):
        await imagine(fake, "a red fox", ALICE)
        grid = await fake.wait_for_message(result_of(1), timeout=15)
        parent_jobid = next(iter(sim.jobs))

        # Default policy 'owner': neither a plain member nor one with the role may click; nothing reaches useapi.
        for stranger in (BOB, CAROL):
            refused = await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V1"), user=stranger))
            assert f"Only <@{ALICE}>" in refused and "Nothing was sent" in refused
        assert button_calls(sim) == []

        # A server manager always may; the job the click makes is theirs.
        await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V1"), user=OWNER))
        made = await fake.wait_for_message(result_of(2), timeout=15)
        assert f"<@{OWNER}>" in made["content"] and "V1 of #1" in made["content"]
        assert button_calls(sim) == ["V1"]

        # Only managers set the policy, and 'role' needs its role.
        assert "Manage Server" in await relay(fake, "policy", {"mode": "everyone"}, user=ALICE)
        assert "needs the `role:`" in await relay(fake, "policy", {"mode": "role"}, user=OWNER)
        answer = await relay(fake, "policy", {"mode": "role", "role": ROLE_ID}, user=OWNER)
        assert f"<@&{ROLE_ID}>" in answer

        # 'role': CAROL has the artists role, BOB does not.
        await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V2"), user=CAROL))
        carols = await fake.wait_for_message(result_of(3), timeout=15)
        assert f"<@{CAROL}>" in carols["content"]
        refused = await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V3"), user=BOB))
        assert f"<@&{ROLE_ID}>" in refused
        assert button_calls(sim) == ["V1", "V2"]

        # 'everyone': BOB may too.
        await relay(fake, "policy", {"mode": "everyone"}, user=OWNER)
        await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V3"), user=BOB))
        await fake.wait_for_message(result_of(4), timeout=15)

        # Back to 'owner': BOB is refused again.
        await relay(fake, "policy", {"mode": "owner"}, user=OWNER)
        refused = await private_answer(await fake.click(int(grid["id"]), button_id(grid, "V4"), user=BOB))
        assert f"Only <@{ALICE}>" in refused
        assert button_calls(sim) == ["V1", "V2", "V3"]
        assert {(call.body or {})["jobid"] for call in sim.calls("jobs/button")} == {parent_jobid}


async def test_jobs_and_job_for_the_owner_and_for_an_admin(fake_discord: FakeDiscord, sim: Simulator,
                                                           tmp_path: Path) -> None:
    fake = fake_discord
    async with running(fake, sim, tmp_path, USER_MAX_QUEUED=0, USEAPI_MAX_JOBS=15) as bot:
        for number in range(1, 12):
            await imagine(fake, f"alice's picture {number}", ALICE)
        await imagine(fake, "bob's picture", BOB)
        results = [await fake.wait_for_message(result_of(n), timeout=20) for n in range(1, 13)]

        # The owner's list: newest first, ten a page, BOB's job not in it.
        listing = await fake.slash("jobs", user=ALICE)
        first = await listing.wait_response()
        assert first["type"] == 4 and first["data"]["flags"] & EPHEMERAL
        page = first["data"]["content"]
        assert [f"`#{n}`" in page for n in range(11, 1, -1)] == [True] * 10
        assert page.index("`#11`") < page.index("`#2`")
        assert "`#1`" not in page and "`#12`" not in page
        message_id = listing.original_message_id
        assert message_id is not None
        shown = fake.messages[message_id]
        older = button_id(shown, "Older ›")
        await (await fake.click(message_id, older, user=ALICE)).wait_response()
        shown = fake.messages[message_id]
        assert "`#1`" in shown["content"] and "`#2`" not in shown["content"]
        await (await fake.click(message_id, button_id(shown, "‹ Newer"), user=ALICE)).wait_response()
        assert "`#11`" in fake.messages[message_id]["content"]

        # Filtered by status.
        none_failed = await private_answer(await fake.slash("jobs", {"status": "failed"}, user=ALICE))
        assert "none in this server" in none_failed

        # `user:` is for admins only.
        refused = await private_answer(await fake.slash("jobs", {"user": BOB}, user=ALICE))
        assert "Only server managers" in refused
        admin_view = await private_answer(await fake.slash("jobs", {"user": ALICE}, user=OWNER))
        assert f"Jobs of <@{ALICE}>" in admin_view and "`#11`" in admin_view and "`#12`" not in admin_view

        # /job by our number, for the owner: the state, the image already uploaded, working buttons.
        shown_job = await fake.slash("job", {"jobid": "#11"}, user=ALICE)
        await shown_job.wait_response()
        card = await shown_job.wait_followup()
        assert card["flags"] & EPHEMERAL
        assert "**Job #11**" in card["content"] and "completed" in card["content"]
        uploaded = results[10]["attachments"][0]["url"]
        assert card["embeds"][0]["image"]["url"] == uploaded
        await private_answer(await fake.click(int(card["id"]), button_id(card, "U2"), user=ALICE))
        await fake.wait_for_message(result_of(13), timeout=15)
        (call,) = sim.calls("jobs/button")
        job11 = await bot.store.jobs.get(11)
        assert job11 is not None and (call.body or {})["jobid"] == job11.backend_job_id
        assert (call.body or {})["button"] == "U2"

        # /job by useapi's jobid, for an admin.
        job1 = await bot.store.jobs.get(1)
        assert job1 is not None and job1.backend_job_id is not None
        admin_card = await fake.slash("job", {"jobid": job1.backend_job_id}, user=OWNER)
        await admin_card.wait_response()
        assert "**Job #1**" in (await admin_card.wait_followup())["content"]

        # Someone else's job (owner policy), and a job that does not exist.
        assert "belongs to" in await private_answer(await fake.slash("job", {"jobid": "1"}, user=BOB))
        assert "There is no job" in await private_answer(await fake.slash("job", {"jobid": "999"}, user=ALICE))

        # A stored link that has expired: the image comes from the message again, with a fresh link.
        with sqlite3.connect(tmp_path / "relay.db") as db:
            db.execute("UPDATE jobs SET image_url = ? WHERE id = 2",
                       ("https://cdn.discordapp.com/attachments/1/2/old.png?ex=5f5e1000&is=5f5e0000&hm=00",))
        before = len(fake.requests)
        renewed = await fake.slash("job", {"jobid": "2"}, user=ALICE)
        await renewed.wait_response()
        card = await renewed.wait_followup()
        assert card["embeds"][0]["image"]["url"] == results[1]["attachments"][0]["url"]
        fetched = [r for r in fake.requests[before:] if r.method == "GET" and r.path.endswith(f"/{results[1]['id']}")]
        assert fetched, "the message was fetched for a fresh link"


async def test_queue_limit_and_daily_quota_refuse_with_a_reason(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    # Jobs run until the test completes them, so they hold their place in the queue limit; slots to spare.
    async with Simulator(token=SIM_TOKEN, job_seconds=None) as sim, \
            running(fake, sim, tmp_path, USER_MAX_QUEUED=2, USEAPI_MAX_JOBS=10):
        # A burst of five at once: exactly two get through, the rest hear which limit stopped them.
        answers = await asyncio.gather(*(imagine(fake, f"burst {n}", ALICE) for n in range(5)))
        accepted = [a for a in answers if "is on its way" in a]
        refused = [a for a in answers if "queue limit is 2" in a]
        assert len(accepted) == 2 and len(refused) == 3, answers
        assert "frees up as soon as one of them finishes" in refused[0]
        # Both are sent once the burst is answered, not necessarily before: the answers do not wait for the sends.
        await eventually(lambda: len(sim.calls("jobs/imagine")) == 2)

        # One finishes: there is room again. Her click on it counts against the limit just the same.
        await eventually(lambda: len(sim.jobs) == 2, timeout=5)
        await sim.complete(next(iter(sim.jobs)))
        grid = await fake.wait_for_message(lambda m: "burst" in m.get("content", "") and bool(m.get("components")),
                                           timeout=10)
        assert "is on its way" in await imagine(fake, "after one finished", ALICE)
        refused_click = await private_answer(await fake.click(int(grid["id"]), button_id(grid, "U1"), user=ALICE))
        assert "queue limit is 2" in refused_click
        assert sim.calls("jobs/button") == []

        # An admin raises her limit: the same click goes through.
        answer = await relay(fake, "queue-limit", {"max": 3, "member": ALICE}, user=OWNER)
        assert f"<@{ALICE}>" in answer and "at most 3" in answer
        assert "is on its way" in await private_answer(
            await fake.click(int(grid["id"]), button_id(grid, "U1"), user=ALICE))
        await eventually(lambda: sim.calls("jobs/button"), timeout=5)

        # The daily quota, for the whole server: BOB's second job today is refused, and says when it resets.
        assert "1 jobs a day" in await relay(fake, "quota", {"daily": 1}, user=OWNER)
        assert "is on its way" in await imagine(fake, "bob one", BOB)
        over = await imagine(fake, "bob two", BOB)
        assert "today's quota of 1" in over and "00:00 UTC" in over and "<t:" in over
        quota = await private_answer(await fake.slash("quota", user=BOB))
        assert "1 of 1 jobs used, 0 left" in quota and "Resets at 00:00 UTC" in quota

        # A job useapi refused before it ran does not use up the quota.
        sim.inject("jobs/imagine", 422)
        await imagine(fake, "carol refused", CAROL)
        await fake.wait_for_message(lambda m: "carol refused" in m.get("content", "") and "🚫" in m["content"],
                                    timeout=10)
        assert "0 of 1 jobs used" in await private_answer(await fake.slash("quota", user=CAROL))
        assert "is on its way" in await imagine(fake, "carol accepted", CAROL)

        # An admin lifts BOB's quota (0: no limit).
        await relay(fake, "quota", {"daily": 0, "member": BOB}, user=OWNER)
        assert "is on its way" in await imagine(fake, "bob three", BOB)
        assert "no daily quota" in await private_answer(await fake.slash("quota", user=BOB))


async def test_servers_are_kept_apart(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    fake.add_guild(FakeGuild(id=GUILD2, name="Other Guild", owner_id=OWNER2, channels=[CHANNEL2],
                             roles={GUILD2: EVERYONE_PERMISSIONS}, members={ALICE: [], BOB: []}))
    other: dict[str, Any] = {"guild_id": GUILD2, "channel_id": CHANNEL2}
    async with running(fake, sim, tmp_path) as bot:
        await imagine(fake, "a job of the first server", ALICE)
        grid = await fake.wait_for_message(result_of(1), timeout=15)
        job = await bot.store.jobs.get(1)
        assert job is not None and job.backend_job_id is not None

        # Not listed, not shown, not found by either id in the other server, even by its admin.
        assert "none in this server" in await private_answer(await fake.slash("jobs", user=ALICE, **other))
        assert "none in this server" in await private_answer(
            await fake.slash("jobs", {"user": ALICE}, user=OWNER2, **other))
        for key in ("1", job.backend_job_id):
            assert "There is no job" in await private_answer(
                await fake.slash("job", {"jobid": key}, user=ALICE, **other))

        # Being a manager of the other server gives no say here, and its policy does not apply here.
        assert "Manage Server" not in await relay(fake, "policy", {"mode": "everyone"}, user=OWNER2, **other)
        refused = await private_answer(await fake.click(int(grid["id"]), button_id(grid, "U1"), user=BOB))
        assert f"Only <@{ALICE}>" in refused
        assert sim.calls("jobs/button") == []

        # Limits are per server: a quota used up here leaves the other server's untouched.
        await relay(fake, "quota", {"daily": 1}, user=OWNER)
        assert "today's quota of 1" in await imagine(fake, "second here", ALICE)
        assert "is on its way" in await imagine(fake, "first there", ALICE, **other)
        there = await fake.wait_for_message(lambda m: "first there" in m.get("content", ""), timeout=10)
        assert there["channel_id"] == str(CHANNEL2)


async def test_gallery_copies_finished_upscales_and_status_reports(fake_discord: FakeDiscord, sim: Simulator,
                                                                   tmp_path: Path) -> None:
    fake = fake_discord
    async with running(fake, sim, tmp_path):
        assert "Manage Server" in await relay(fake, "gallery", {"channel": GALLERY_ID}, user=ALICE)
        assert f"<#{GALLERY_ID}>" in await relay(fake, "gallery", {"channel": GALLERY_ID}, user=OWNER)
        assert "gallery" in fake.channel_messages(GALLERY_ID)[0]["content"]

        await imagine(fake, "a lighthouse", ALICE)
        grid = await fake.wait_for_message(result_of(1), timeout=15)
        await private_answer(await fake.click(int(grid["id"]), button_id(grid, "U1"), user=ALICE))
        upscale = await fake.wait_for_message(result_of(2), timeout=15)
        assert upscale["channel_id"] == str(CHANNEL_ID)

        copy = await fake.wait_for_message(lambda m: m["channel_id"] == str(GALLERY_ID) and "job #2" in m["content"],
                                           timeout=10)
        assert f"<@{ALICE}>" in copy["content"], "the owner is named"
        assert upscale["id"] in copy["content"], "with a link to the result"
        assert copy["attachments"] and copy["attachments"][0]["filename"].endswith(".png")
        # Named, never pinged: every message the bot posted asked Discord for no mentions.
        posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
        assert posts and all(r.json["allowed_mentions"] == {"parse": []} for r in posts)
        # The grid (published before the click) is no upscale: only the notice and the one copy are there.
        assert len(fake.channel_messages(GALLERY_ID)) == 2
        # Should the bot die between the copy and recording it, the repeat carries the same nonce, which
        # Discord answers with the first copy (enforce_nonce) rather than posting a second.
        (copy_post,) = [r for r in posts if r.path.endswith(f"/channels/{GALLERY_ID}/messages")
                        and "job #2" in (r.json.get("content") or "")]
        assert copy_post.json["nonce"] == "g2" and copy_post.json["enforce_nonce"] is True

        assert "Manage Server" in await relay(fake, "status", user=ALICE)
        status = await relay(fake, "status", user=OWNER)
        for part in ("**Slots:** 0 of 3 in use", "**Queue:** empty", "**Account:** ✅ healthy",
                     "**Updates:** callbacks", "only a result's owner", f"gallery <#{GALLERY_ID}>", "**Version:**"):
            assert part in status, (part, status)
