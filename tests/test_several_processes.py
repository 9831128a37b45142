"""Several bot processes on one PostgreSQL database and one fake Discord, behind one load balancer, each the real
`python -m bot`: they share Midjourney's slots (never more at the simulator, which sees every request, than
its max jobs), the fair share between members, and the work (both start jobs); every result is posted once;
when the process holding the gateway is killed with `kill -9`, nothing is lost or posted twice, the other one
connects and a click after that works. With SHARD_IDS each process connects its own shard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.backends.useapi.simulator import Simulator
from tests.balancer import Balancer
from tests.fakediscord import ALICE, BOB, CAROL, OWNER, FakeDiscord, FakeGuild
from tests.harness import SIM_TOKEN, SubprocessBot, bot_env, eventually
from tests.pgserver import PgServer
from tests.ports import free_port
from tests.resilience import cards_for, results_for
from tests.test_walking_skeleton import button_id

JOBS = 30
SLOTS = 3


async def role_of(port: int) -> str | None:
    """What a process says of its part at the gateway (/healthz), None while it does not answer."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as answer:
            body: dict[str, Any] = await answer.json()
            return str(body.get("gateway"))
    except aiohttp.ClientError:
        return None


@asynccontextmanager
async def processes(fake: FakeDiscord, sim: Simulator, url: str, tmp_path: Path, count: int = 2,
                    **settings: Any) -> AsyncIterator[tuple[list[SubprocessBot], list[int], Balancer]]:
    """`count` bots on the database at `url`, the first holding the gateway, the others standing by."""
    ports = [free_port() for _ in range(count)]
    async with Balancer(ports) as balancer:
        bots = []
        for number, port in enumerate(ports):
            env = bot_env(fake, sim, tmp_path / "unused.db", callbacks=False, port=port, DATABASE_URL=url,
                          PUBLIC_URL=balancer.url, USEAPI_MAX_JOBS=SLOTS, USER_MAX_QUEUED=0, POLL_INTERVAL=0.5,
                          BACKEND_TIMEOUT_SECONDS=2, PROGRESS_EDIT_SECONDS=0.2, LOG_LEVEL="INFO", **settings)
            bots.append(SubprocessBot(env, tmp_path / f"bot{number}.log"))
        try:
            await bots[0].start(fake)
            await eventually(lambda: _is(role_of(ports[0]), "connected"), timeout=20)
            for bot, port in zip(bots[1:], ports[1:], strict=True):
                await bot.start(fake)
                await eventually(lambda port=port: _is(role_of(port), "standby"), timeout=20)  # type: ignore[misc]
            yield bots, ports, balancer
        finally:
            for bot in bots:
                if bot.proc is not None and bot.proc.returncode is None:
                    await bot.kill()


async def _is(answer: Any, wanted: str) -> bool:
    return bool(await answer == wanted)


async def readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as answer:
        return answer.status, await answer.json()


def members(fake: FakeDiscord) -> list[int]:
    return [ALICE, BOB, CAROL, OWNER, fake.add_user("dana").id]


def job_rows(server: PgServer, url: str) -> list[dict[str, Any]]:
    return server.fetch(url, "SELECT id, owner_id, status, published, created_at, submitted_at, backend_job_id "
                             "FROM jobs ORDER BY id")


def accepted_in(bot: SubprocessBot) -> int:
    """Jobs this process sent that the backend accepted (its log says so once each)."""
    return sum(1 for line in bot.log_text().splitlines() if ": accepted by " in line)


def errors_in(bots: Iterable[SubprocessBot]) -> list[str]:
    return [line for bot in bots for line in bot.log_text().splitlines() if " ERROR " in line or "Traceback" in line]


def assert_fair(rows: list[dict[str, Any]], owners: int) -> None:
    """Once every job is filed, while every member still waits, each `owners` sends in a row serve each once."""
    filed = max(row["created_at"] for row in rows)
    after = [row["owner_id"] for row in sorted(rows, key=lambda r: r["submitted_at"]) if row["submitted_at"] > filed]
    assert len(after) >= 10, f"too few sends after the filing to judge ({len(after)})"
    for start in range(len(after) - owners + 1):
        if len(set(after[start:])) == owners:
            window = after[start:start + owners]
            assert len(set(window)) == owners, f"sends {start}..{start + owners} after filing: {window}"


def assert_each_posted_once(fake: FakeDiscord, jobs: Iterable[int]) -> None:
    for job in jobs:
        assert len(results_for(fake, job)) == 1, f"job {job} posted {len(results_for(fake, job))} times"


async def test_two_processes_share_the_slots_the_fair_share_and_the_work(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    fake = fake_discord
    async with Simulator(token=SIM_TOKEN, job_seconds=0.6, progress_steps=1) as sim, \
            processes(fake, sim, pg_url, tmp_path) as (bots, ports, balancer):
        # The one standing by says so, and is ready all the same: it takes callbacks and publishes.
        status, body = await readyz(ports[1])
        assert status == 200 and body["checks"]["gateway"].startswith("standby: another process holds"), body
        assert len(fake.gateway.active) == 1, "one gateway connection for the two"
        people = members(fake)
        await asyncio.gather(*(fake.slash("imagine", {"prompt": f"kite {n}"}, user=people[n % len(people)])
                               for n in range(JOBS)))
        await eventually(lambda: all(results_for(fake, job) for job in range(1, JOBS + 1)), timeout=60)
        await asyncio.sleep(0.5)  # a late duplicate would show by now

        assert sim.max_executing_seen <= SLOTS and sim.rejections_429 == 0, "never more than the slots, in all"
        sent = [call.body["replyRef"] for call in sim.calls("jobs/imagine") if call.body]
        assert len(sent) == JOBS == len(set(sent)), "no job sent twice"
        assert_each_posted_once(fake, range(1, JOBS + 1))
        assert all(len(cards_for(fake, job)) == 1 for job in range(1, JOBS + 1)), "one message a job, no stray one"
        rows = job_rows(pg_server, pg_url)
        assert [row["status"] for row in rows] == ["completed"] * JOBS and all(row["published"] for row in rows)
        # Both sent jobs (a job whose callback another process took before the call returned is adopted there).
        assert all(accepted_in(bot) > 0 for bot in bots), [accepted_in(bot) for bot in bots]
        assert_fair(rows, len(people))
        assert all(count > 0 for count in balancer.forwarded.values()), "callbacks reached both"
        assert fake.spec_errors == [] and errors_in(bots) == []
        assert [await bot.terminate() for bot in bots] == [0, 0]


async def test_kill_9_of_the_gateway_holder_loses_nothing_and_the_standby_takes_the_gateway(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    fake = fake_discord
    async with Simulator(token=SIM_TOKEN, job_seconds=0.6, progress_steps=1) as sim, \
            processes(fake, sim, pg_url, tmp_path) as (bots, ports, _):
        holder, standby = bots
        people = members(fake)
        await asyncio.gather(*(fake.slash("imagine", {"prompt": f"storm {n}"}, user=people[n % len(people)])
                               for n in range(JOBS)))
        # Killed in the middle: every command filed, some results posted, the rest running or waiting.
        await eventually(lambda: len(job_rows(pg_server, pg_url)) == JOBS, timeout=20)
        await eventually(lambda: sum(1 for job in range(1, JOBS + 1) if results_for(fake, job)) >= JOBS // 3,
                         timeout=30)
        identifies = fake.gateway.identifies
        await holder.kill()
        await eventually(lambda: _is(role_of(ports[1]), "connected"), timeout=20)
        assert fake.gateway.identifies == identifies + 1 and len(fake.gateway.active) == 1

        await eventually(lambda: all(results_for(fake, job) for job in range(1, JOBS + 1)), timeout=60)
        old = results_for(fake, 1)[0]
        owner = int(job_rows(pg_server, pg_url)[0]["owner_id"])  # the commands were filed in any order
        click = await fake.click(int(old["id"]), button_id(old, "U1"), user=owner)
        answer = await click.wait_response()
        assert answer["type"] == 5, answer
        await eventually(lambda: results_for(fake, JOBS + 1), timeout=20)
        await asyncio.sleep(0.5)

        assert sim.max_executing_seen <= SLOTS and sim.rejections_429 == 0
        refs = [call.body["replyRef"] for call in sim.calls("jobs/imagine") if call.body]
        assert len(refs) == JOBS == len(set(refs)), "0 sent twice"
        assert_each_posted_once(fake, range(1, JOBS + 2))
        rows = job_rows(pg_server, pg_url)
        assert all(row["status"] == "completed" and row["published"] for row in rows), "0 lost"
        assert "took over" in standby.log_text()
        assert fake.spec_errors == [] and errors_in([standby]) == []
        assert await standby.terminate() == 0


@pytest.mark.parametrize("shards", [2])
async def test_with_shard_ids_each_process_connects_its_own_shard(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path, shards: int) -> None:
    fake = fake_discord
    fake.recommended_shards = shards
    # A second server, on the other shard ((id >> 22) % 2 differs), with a channel of its own.
    other = fake.add_guild(FakeGuild(id=1_100_000_000_004_194_404, name="Other Guild", owner_id=OWNER,
                                     channels=[1_100_000_000_004_194_500], roles={}, members={ALICE: [], BOB: []}))
    async with Simulator(token=SIM_TOKEN, job_seconds=0.3, progress_steps=1) as sim:
        ports = [free_port(), free_port()]
        bots = [SubprocessBot(bot_env(fake, sim, tmp_path / "unused.db", port=port, DATABASE_URL=pg_url,
                                      SHARD_COUNT=shards, SHARD_IDS=shard, POLL_INTERVAL=0.5, LOG_LEVEL="INFO"),
                              tmp_path / f"shard{shard}.log") for shard, port in enumerate(ports)]
        try:
            for bot in bots:
                await bot.start(fake)
            await eventually(lambda: len(fake.gateway.active) == shards, timeout=20)
            assert sorted(tuple(session.identify["shard"]) for session in fake.gateway.active) == [(0, 2), (1, 2)]
            for port in ports:
                await eventually(lambda port=port: _is(role_of(port), "connected"), timeout=20)  # type: ignore[misc]
            here = await fake.slash("imagine", {"prompt": "a shard of glass"}, user=ALICE)
            there = await fake.slash("imagine", {"prompt": "a shard of ice"}, user=BOB, guild_id=other.id,
                                     channel_id=other.channels[0])
            await here.wait_response()
            await there.wait_response()
            await eventually(lambda: results_for(fake, 1) or results_for(fake, 2), timeout=20)
            await eventually(lambda: all(results_for(fake, job, channel) for job, channel in (
                (row["id"], row["channel_id"]) for row in pg_server.fetch(
                    pg_url, "SELECT id, channel_id FROM jobs ORDER BY id"))), timeout=20)
            assert fake.spec_errors == [] and errors_in(bots) == []
            assert [await bot.terminate() for bot in bots] == [0, 0]
        finally:
            for bot in bots:
                if bot.proc is not None and bot.proc.returncode is None:
                    await bot.kill()


async def test_a_job_caught_being_sent_by_a_dead_process_is_sent_by_the_survivor_once_its_call_has_ended(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    fake = fake_discord
    # useapi answers a POST after 3 s; the first process dies while its jobs/imagine call waits, and useapi,
    # down by the time it answers, never files that job: the survivor must send it itself, once.
    async with Simulator(token=SIM_TOKEN, job_seconds=0.5, progress_steps=1, post_delay=3.0) as sim:
        settings: dict[str, Any] = {"DATABASE_URL": pg_url, "POLL_INTERVAL": "0.5",
                                    "BACKEND_TIMEOUT_SECONDS": "2", "LOG_LEVEL": "INFO"}
        first = SubprocessBot(bot_env(fake, sim, tmp_path / "unused.db", callbacks=False, **settings),
                              tmp_path / "first.log")
        survivor = SubprocessBot(bot_env(fake, sim, tmp_path / "unused.db", callbacks=False, **settings),
                                 tmp_path / "survivor.log")
        try:
            await first.start(fake)
            await fake.slash("imagine", {"prompt": "a letter that never arrived"}, user=ALICE)
            await eventually(lambda: [row for row in job_rows(pg_server, pg_url) if row["status"] == "submitting"],
                             timeout=10)
            sim.set_outage(True)
            await first.kill()
            await eventually(lambda: sim.calls("jobs/imagine"), timeout=5)
            await asyncio.sleep(3.5)  # the call in flight was answered (503) to nobody
            sim.set_outage(False)
            sim.set_post_delay(0.0)
            assert not sim.jobs

            await survivor.start(fake)
            # Sent again once the dead process's call has certainly ended (3 x 2 s + 5 s after it began), not
            # when the scheduler next looks of its own accord (30 s later).
            await eventually(lambda: results_for(fake, 1), timeout=25)
            assert len(sim.jobs) == 1, "sent once"
            assert len(results_for(fake, 1)) == 1
            assert "took over" in survivor.log_text()
            assert fake.spec_errors == [] and errors_in([survivor]) == []
            assert await survivor.terminate() == 0
        finally:
            for bot in (first, survivor):
                if bot.proc is not None and bot.proc.returncode is None:
                    await bot.kill()
