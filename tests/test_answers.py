"""One test per useapi answer to jobs/button, and progress: what the user, the admins and useapi each see."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import (
    ALICE,
    BOB,
    CHANNEL_ID,
    EPHEMERAL,
    GALLERY_ID,
    GUILD_ID,
    OWNER,
    FakeDiscord,
    InteractionRecord,
)
from tests.fakediscord import RecordedRequest as DiscordRequest
from tests.harness import SIM_TOKEN, eventually
from tests.resilience import manual_simulator
from tests.test_buttons import (
    GRID,
    card,
    click,
    imagine,
    names,
    private,
    running_bot,
    sent,
    shows_job,
    sim_job,
    sim_job_soon,
)

JSON = dict[str, Any]
# Edits show at once here, so a test sees each state the working message passes through.
FAST = {"PROGRESS_EDIT_SECONDS": "0.05"}


async def said(record: InteractionRecord, text: str, timeout: float = 10) -> str:
    """The ephemeral answer to `record` (response or follow-up) that contains `text`."""

    def find() -> str | None:
        candidates = [c.get("data", {}) for c in record.callbacks] + record.followups
        for message in candidates:
            if text in str(message.get("content", "")):
                assert int(message.get("flags", 0)) & EPHEMERAL, "private answers are ephemeral"
                return str(message["content"])
        return None

    found: str = await eventually(find, timeout=timeout)
    return found


def private_texts(record: InteractionRecord) -> list[str]:
    return [str(m.get("content", "")) for m in record.followups]


async def grid_of(fake: FakeDiscord, prompt: str = "a lighthouse at dusk") -> JSON:
    await imagine(fake, prompt)
    return await card(fake, 1)


def failure(message: JSON) -> bool:
    """A failure, decline or duplicate card rather than a result."""
    return any(mark in message.get("content", "") for mark in ("❌", "🚫", "↪️"))


def working_edits(fake: FakeDiscord, message_id: str) -> list[str]:
    """Every content the bot PATCHed onto one message, in order."""
    return [str((r.json or {}).get("content", "")) for r in fake.requests
            if r.method == "PATCH" and r.path.endswith(f"/messages/{message_id}")]


class Clock:
    """Notes when each request reaches the simulator and the fake Discord (sampled every 5 ms)."""

    def __init__(self, sim: Simulator, fake: FakeDiscord) -> None:
        self.sim = sim
        self.fake = fake
        self.sim_times: list[tuple[float, str]] = []
        self.discord_times: list[tuple[float, DiscordRequest]] = []
        self.completed: dict[str, float] = {}  # useapi jobid -> when the simulator completed it
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        seen_sim = seen_fake = 0
        while True:
            now = time.monotonic()
            for request in self.sim.requests[seen_sim:]:
                self.sim_times.append((now, request.path))
            for record in self.fake.requests[seen_fake:]:
                self.discord_times.append((now, record))
            seen_sim, seen_fake = len(self.sim.requests), len(self.fake.requests)
            for jobid, job in self.sim.jobs.items():
                if job.get("status") == "completed":
                    self.completed.setdefault(jobid, now)
            await asyncio.sleep(0.005)

    def times(self, suffix: str) -> list[float]:
        return [t for t, path in self.sim_times if path.endswith(suffix)]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Clock]:
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()


# -- 400, 401/402, 404 ------------------------------------------------------------------------------------


async def test_400_names_the_button_or_field_and_is_not_retried(fake_discord: FakeDiscord, sim: Simulator,
                                                                tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        jobid = sim_job(sim, 1)
        sim.inject("jobs/button", 400, {"error": f'button V1 not found in job {jobid} buttons ["U1","U2"]',
                                        "code": 400})
        record = await click(fake, grid, "V1")
        text = await said(record, "is not one of that job's buttons")
        assert "`V1`" in text and '["U1","U2"]' in text
        failed = await card(fake, 2, failure)
        assert "`V1` is not one of that job's buttons" in failed["content"]

        sim.inject("jobs/button", 400, {"error": "replyRef is too long", "code": 400})
        record = await click(fake, grid, "V2")
        assert "the `replyRef` field is too long" in await said(record, "replyRef")
        await asyncio.sleep(0.5)
        assert len(sim.calls("jobs/button")) == 2, "a 400 is not sent again"


async def test_401_and_402_tell_users_briefly_admins_in_detail_and_alert_once(fake_discord: FakeDiscord,
                                                                              sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 401, times=2)
        first = await click(fake, grid, "V1")
        text = await said(first, "misconfigured")
        assert "401" not in text and "USEAPI_TOKEN" not in text, "members get the short text"
        failed = await card(fake, 2, failure)
        assert "useapi account is misconfigured; an admin has been told" in failed["content"]
        second = await click(fake, grid, "V2")
        await said(second, "misconfigured")
        # No admin channel set: the server owner hears by DM, once for both failures.
        alert = await fake.wait_for_message(lambda m: m in fake.dms and "401" in m.get("content", ""))
        assert "USEAPI_TOKEN" in alert["content"]

        answer = await private(await fake.slash("relay", {"channel": GALLERY_ID}, subcommand="admin-channel",
                                                user=OWNER))
        assert f"<#{GALLERY_ID}>" in answer
        sim.inject("jobs/button", 402, times=2)
        by_admin = await click(fake, grid, "V3", user=OWNER)
        details = await said(by_admin, "402")
        assert "subscription" in details, "an admin who clicks gets the details"
        by_member = await click(fake, grid, "V4")
        assert "402" not in await said(by_member, "no active subscription")
        await fake.wait_for_message(lambda m: int(m["channel_id"]) == GALLERY_ID and "402" in m["content"])

        await asyncio.sleep(0.5)
        assert len(sim.calls("jobs/button")) == 4, "401/402 are never retried"
        assert len([m for m in fake.dms if "401" in m["content"]]) == 1, "alerted once"
        assert len([m for m in fake.channel_messages(GALLERY_ID) if "402" in m["content"]]) == 1


async def test_404_says_useapi_no_longer_knows_the_job(fake_discord: FakeDiscord, sim: Simulator,
                                                       tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 404)
        record = await click(fake, grid, "U4")
        assert "31 days" in await said(record, "no longer knows")
        assert "no longer knows" in (await card(fake, 2, failure))["content"]


# -- 409 --------------------------------------------------------------------------------------------------


async def test_409_links_the_upscale_our_store_already_has(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **FAST):
        await imagine(fake, "a glass teapot")
        await sim.complete(await sim_job_soon(sim, 1))
        grid = await card(fake, 1)
        await click(fake, grid, "U1")
        working = await fake.wait_for_message(lambda m: shows_job(m, 2))
        await sim_job_soon(sim, 2)  # useapi runs the upscale: U1 is taken

        # A one-shot button has one job per parent, held by the database: the second click is answered with
        # the first job, and nothing is sent.
        again = await click(fake, grid, "U1")
        link = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{working['id']}"
        text = await said(again, "already on its way")
        assert link in text and "job #2" in text and "❌" not in text
        assert [body["button"] for body in sent(sim)] == ["U1"]

        await sim.complete(sim_job(sim, 2))
        await card(fake, 2)
        await fake.wait_for_message(lambda m: shows_job(m, 1) and any(
            c.get("label") == "U1" and c.get("style") == 1 for row in m["components"] for c in row["components"]))
        done = await click(fake, grid, "U1")
        assert link in await said(done, "already made")
        assert [body["button"] for body in sent(sim)] == ["U1"]
        assert not [m for m in fake.channel_messages(CHANNEL_ID) if shows_job(m, 3)]


async def test_409_adopts_the_upscale_useapi_names_when_the_store_has_none(fake_discord: FakeDiscord,
                                                                            sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        parent = sim_job(sim, 1)
        # U2 was clicked outside this bot (by hand, or before its database was lost).
        async with aiohttp.ClientSession() as http:
            made = await http.post(f"{sim.base_url}/jobs/button", json={"jobid": parent, "button": "U2"},
                                   headers={"Authorization": f"Bearer {SIM_TOKEN}"})
            outside = (await made.json())["jobid"]
        await sim.wait_final(outside)

        record = await click(fake, grid, "U2")
        result = await card(fake, 2)
        assert "U2 of #1" in result["content"] and "Custom Zoom" in names(result)
        assert [body["button"] for body in sent(sim)] == ["U2", "U2"]
        assert any(call.query.get("jobid") == outside for call in sim.calls("jobs/"))
        assert not any("❌" in text for text in private_texts(record))
        await fake.wait_for_message(lambda m: m["id"] == grid["id"] and any(
            c.get("label") == "U2" and c.get("style") == 1 for row in m["components"] for c in row["components"]))


# -- 422 --------------------------------------------------------------------------------------------------


async def test_422_details_go_privately_to_the_owner_and_the_card_names_a_decline(
        fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 422)
        record = await click(fake, grid, "V2")
        assert "AI moderators" in await said(record, "Midjourney declined this request:")
        declined = await card(fake, 2, failure)
        assert "🚫" in declined["content"] and "declined" in declined["content"]
        assert "moderators" not in declined["content"], "the details stay private"


# -- 429 --------------------------------------------------------------------------------------------------


async def test_429_queue_full_waits_and_is_sent_again_without_a_click(fake_discord: FakeDiscord,
                                                                      sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with Clock(sim, fake).running() as clock, running_bot(fake, sim, tmp_path, USEAPI_RETRY_SECONDS="0.5",
                                                                **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 429)
        await click(fake, grid, "V3")
        working = await fake.wait_for_message(lambda m: shows_job(m, 2))
        await card(fake, 2)
        first, second = clock.times("jobs/button")
        assert second - first >= 0.45, "sent again after USEAPI_RETRY_SECONDS"
        assert any("queue is full): waiting" in text for text in working_edits(fake, working["id"]))
        assert [body["button"] for body in sent(sim)] == ["V3", "V3"]


async def test_429_discord_rate_limit_honours_a_longer_retry_after(fake_discord: FakeDiscord, sim: Simulator,
                                                                   tmp_path: Path) -> None:
    fake = fake_discord
    body = {"error": "Discord /interactions failed with HTTP status 429",
            "errorDetails": '{"global":true,"message":"You are being rate limited.","retry_after":1.5}', "code": 429}
    async with Clock(sim, fake).running() as clock, running_bot(fake, sim, tmp_path, USEAPI_RETRY_SECONDS="0.2",
                                                                **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 429, body)
        await click(fake, grid, "V4")
        working = await fake.wait_for_message(lambda m: shows_job(m, 2))
        await card(fake, 2)
        first, second = clock.times("jobs/button")
        assert second - first >= 1.45, "Discord's retry_after (1.5 s) beats USEAPI_RETRY_SECONDS (0.2 s)"
        assert any("Discord is rate-limiting Midjourney" in text for text in working_edits(fake, working["id"]))


# -- 504 --------------------------------------------------------------------------------------------------


async def test_504_fails_halves_concurrency_and_still_publishes_a_late_result(fake_discord: FakeDiscord,
                                                                             sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, USEAPI_MAX_JOBS="4", **FAST) as runner:
        grid = await grid_of(fake)
        sim.inject("jobs/button", 504, complete_later=True)
        record = await click(fake, grid, "V1")
        assert "queued this job where useapi cannot track it" in await said(record, "queued")
        failed = await fake.wait_for_message(lambda m: shows_job(m, 2))
        await eventually(lambda: any("marked failed" in text for text in working_edits(fake, failed["id"])))

        # Four jobs at once now run two at a time (4 halved), and useapi is told maxJobs 2.
        sim.max_executing_seen = 0
        for number, user in enumerate((ALICE, BOB, ALICE, BOB), start=1):
            await imagine(fake, f"a quiet street {number}", user=user)
        for number in range(3, 7):
            await card(fake, number)
        assert sim.max_executing_seen == 2
        assert [call.body["maxJobs"] for call in sim.calls("jobs/imagine")[1:] if call.body] == [2, 2, 2, 2]
        assert runner.bot is not None and runner.bot.relay.capacity() == 2

        # Midjourney finished the queued job after all: its failure card becomes the result.
        late = await card(fake, 2)
        assert late["id"] == failed["id"] and names(late) == GRID


# -- 596 --------------------------------------------------------------------------------------------------


def job_calls_since(sim: Simulator, start: int) -> list[str]:
    return [r.path for r in sim.requests[start:] if "/jobs" in r.path]


async def test_596_pauses_everything_alerts_once_and_relay_reset_resumes(fake_discord: FakeDiscord,
                                                                         sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 596)
        record = await click(fake, grid, "V1")
        assert "/relay reset" in await said(record, "pending moderation message")
        start = len(sim.requests)
        working = await fake.wait_for_message(lambda m: shows_job(m, 2) and "Paused" in m["content"])
        alert = await fake.wait_for_message(lambda m: m in fake.dms and "596" in m["content"])
        assert "/relay reset" in alert["content"]

        # Nothing more goes to useapi's job endpoints while paused; new work waits and says why.
        later = await imagine(fake, "a second lighthouse", user=BOB)
        await later.wait_response()
        await fake.wait_for_message(lambda m: shows_job(m, 3) and "Paused" in m["content"])
        await asyncio.sleep(0.6)
        assert job_calls_since(sim, start) == []
        assert any(r.path == "/v2/account/midjourney" for r in sim.requests[start:]), "the account is watched"

        refused = await private(await fake.slash("relay", subcommand="reset", user=BOB))
        assert "Manage Server" in refused and sim.calls("/reset") == []
        answer = await private(await fake.slash("relay", subcommand="reset", user=OWNER))
        assert "running again" in answer
        assert [r.path for r in sim.calls("/reset")] == [f"/v2/account/midjourney/{sim.channel}/reset"]
        assert (await card(fake, 2))["id"] == working["id"]
        await card(fake, 3)
        assert len([m for m in fake.dms if "596" in m["content"]]) == 1, "admins alerted once"


async def test_596_survives_a_restart_and_resumes_by_itself_once_the_account_shows_clear(
        fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path, **FAST):
        grid = await grid_of(fake)
        sim.inject("jobs/button", 596)
        await click(fake, grid, "V2")
        await fake.wait_for_message(lambda m: shows_job(m, 2) and "Paused" in m["content"])
    # The pause outlives a restart: the new process does not try the account again with a job.
    start = len(sim.requests)
    async with running_bot(fake, sim, tmp_path, **FAST):
        await asyncio.sleep(0.7)
        assert job_calls_since(sim, start) == []

        sim.set_pending_mod(False)  # a human answered Midjourney's message and useapi cleared it
        await card(fake, 2)
        assert sim.calls("/reset") == [], "the bot never resets on its own"


# -- timeouts, connection errors, 5xx ----------------------------------------------------------------------


async def test_5xx_and_connection_errors_back_off_then_fail_clearly(fake_discord: FakeDiscord, sim: Simulator,
                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    env = {"USEAPI_RETRY_ATTEMPTS": "4", "USEAPI_BACKOFF_SECONDS": "0.2", **FAST}
    async with Clock(sim, fake).running() as clock, running_bot(fake, sim, tmp_path, **env):
        grid = await grid_of(fake)
        sim.set_outage(True, status=503)
        record = await click(fake, grid, "V1")
        failed = await card(fake, 2, failure)
        assert "gave up after 4 tries" in failed["content"]
        assert "after 4 tries" in await said(record, "useapi kept failing")
        tries = clock.times("jobs/button")
        gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
        # Waits of 0.2, 0.4, 0.8 s, each with jitter down to half: exponential, not a fixed beat.
        assert len(gaps) == 3 and 0.09 <= gaps[0] <= 0.3 and 0.19 <= gaps[1] <= 0.5 and 0.39 <= gaps[2] <= 0.9, gaps

        # A short outage: sent again after it, and the job completes.
        record = await click(fake, grid, "V2")
        await eventually(lambda: len(clock.times("jobs/button")) == 5)
        sim.set_outage(False)
        await card(fake, 3)

        # useapi unreachable altogether (connection refused), then back on the same address.
        port = int(sim.base_url.rsplit(":", 1)[1].split("/")[0])
        await sim.close()
        record = await click(fake, grid, "V3")
        working = await fake.wait_for_message(lambda m: shows_job(m, 4) and "unreachable" in m["content"])
        await sim.start("127.0.0.1", port)
        assert (await card(fake, 4))["id"] == working["id"]
        assert "on its way" in await said(record, "on its way")


async def test_a_useapi_timeout_is_retried_then_fails_clearly(fake_discord: FakeDiscord, sim: Simulator,
                                                              tmp_path: Path) -> None:
    fake = fake_discord
    env = {"USEAPI_TIMEOUT_SECONDS": "0.3", "USEAPI_RETRY_ATTEMPTS": "2", "USEAPI_BACKOFF_SECONDS": "0.1", **FAST}
    async with running_bot(fake, sim, tmp_path, **env):
        grid = await grid_of(fake)
        sim.set_post_delay(1.0)  # every POST now answers after the bot has stopped waiting
        record = await click(fake, grid, "V1")
        failed = await card(fake, 2, failure)
        assert "gave up after 2 tries" in failed["content"]
        assert "did not answer in time" in await said(record, "did not answer in time")
        assert len(sim.calls("jobs/button")) == 2

        # useapi answers in time again: the next click goes through.
        sim.set_post_delay(0)
        await click(fake, grid, "V2")
        await card(fake, 3)
        assert fake.spec_errors == []


async def test_a_timed_out_call_that_useapi_accepted_is_adopted_not_sent_twice(fake_discord: FakeDiscord,
                                                                               tmp_path: Path) -> None:
    fake = fake_discord
    # The first POST answers after the bot stopped waiting (0.3 s), but useapi did accept it; the next try
    # (0.75 s or more later) finds it among useapi's running jobs under the job's replyRef.
    env = {"USEAPI_TIMEOUT_SECONDS": "0.3", "USEAPI_BACKOFF_SECONDS": "1.5", **FAST}
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **env):
        await imagine(fake, "a slow harbour")
        await eventually(lambda: len(sim.executing()) == 1)
        await sim.complete(sim.executing()[0])
        grid = await card(fake, 1)
        sim.set_post_delay(0.5)
        await click(fake, grid, "V1")
        await eventually(lambda: len(sim.executing()) == 1, timeout=5)
        (child,) = sim.executing()
        await eventually(lambda: sim.calls("jobs/") and any(
            r.query.get("jobid") == child for r in sim.calls("jobs/")), timeout=5)
        await sim.complete(child)
        result = await card(fake, 2)
        assert not failure(result)
        assert len(sim.calls("jobs/button")) == 1, "sent once: the timed-out call was adopted"


# -- progress ----------------------------------------------------------------------------------------------


async def test_progress_bar_edits_are_coalesced_per_channel_and_finals_are_not_held(fake_discord: FakeDiscord,
                                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    interval = 1.0
    slow = Simulator(token=SIM_TOKEN, job_seconds=2.4, progress_steps=11)
    await slow.start()
    try:
        async with Clock(slow, fake).running() as clock, running_bot(fake, slow, tmp_path,
                                                                     PROGRESS_EDIT_SECONDS=str(interval)):
            # Two jobs in one channel share one edit budget.
            await imagine(fake, "a slow sunrise", user=ALICE)
            await imagine(fake, "a slow sunset", user=BOB)
            first = await card(fake, 1)
            second = await card(fake, 2)
            await asyncio.sleep(0.05)  # the clock's next sample
            ids = {first["id"], second["id"]}
            edits = [(t, r) for t, r in clock.discord_times
                     if r.method == "PATCH" and r.path.rsplit("/", 1)[-1] in ids]
            progress = [(t, r) for t, r in edits if not r.files]
            bars = [str((r.json or {}).get("content", "")) for _, r in progress]
            assert any("▰" in bar and "%" in bar for bar in bars), bars
            # 2 jobs x 11 progress steps arrived; a handful of edits were made, never two within the interval.
            assert 1 <= len(progress) <= 6, bars
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(progress)]
            assert all(gap >= interval - 0.05 for gap in gaps), gaps
            # Finals are not held back by that budget: each follows useapi's completion at once.
            for number, message in ((1, first), (2, second)):
                final = next(t for t, r in edits if r.files and r.path.endswith(message["id"]))
                assert final - clock.completed[sim_job(slow, number)] < 0.5
            assert not [r for _, r in clock.discord_times if r.status == 429]
    finally:
        await slow.close()
