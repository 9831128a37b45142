"""Benchmark: several bot processes on one PostgreSQL database (issue 12).

1. Makespan over the slot-bound ideal with 1, 2 and 3 processes: `--users` members send all their /imagine
   commands at once to the process holding the gateway; each job takes `--job-seconds` in the useapi
   simulator; the processes share the slots (USEAPI_MAX_JOBS) and take callbacks behind one load balancer
   (tests/balancer.py), POLL_INTERVAL 15 s as in production. Makespan: first command sent -> last result card
   stored by the fake Discord; ideal: ceil(jobs / slots) x job-seconds. The simulator's most jobs executing
   at once and its 429s say whether the slots were ever overfilled, counted across all processes.
2. `kill -9` of the gateway holder in the middle of a run of two processes (30 jobs of 2 s on 3 slots,
   POLL_INTERVAL 15 s): seconds from the kill until the survivor holds every job the dead one held (takeover),
   until the first of those jobs moves again (sent, or its result posted, by the survivor), and until the
   gateway is back (the survivor's session READY at the fake). Then every job must be posted exactly once.

    .venv/bin/python bench/multiprocess.py [--small] [--runs 3] [--processes 1,2,3] [--kill-runs 3]

Each process is `python -m bot` (tests/harness.py SubprocessBot); the PostgreSQL server is the benchmark's
own (tests/pgserver.py), a fresh database per run.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BUILTIN_USERS, TimedFakeDiscord, figure, footer, header, median, note, parser
from bot.backends.useapi.simulator import Simulator
from bot.store.postgres.session import GATEWAY_LOCK, PROCESS_LOCKS
from tests.balancer import Balancer
from tests.harness import SIM_TOKEN, SubprocessBot, bot_env
from tests.pgserver import PgServer, start_server
from tests.ports import free_port
from tests.resilience import results_for

POLL = 0.02
RUNS = itertools.count(1)  # each run's logs apart from the others'


@dataclass
class Team:
    """The fakes, the database and the bot processes of one run."""

    fake: TimedFakeDiscord
    sim: Simulator
    server: PgServer
    url: str
    bots: list[SubprocessBot]
    ports: list[int]
    users: list[int]

    def rows(self, sql: str, *values: Any) -> list[dict[str, Any]]:
        return self.server.fetch(self.url, sql, *values)


async def role_of(port: int) -> str | None:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as answer:
            return str((await answer.json()).get("gateway"))
    except aiohttp.ClientError:
        return None


async def until(check: Any, timeout: float, what: str) -> float:
    """Poll `check` (sync or async) until truthy; the time.monotonic() it became so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic()
        await asyncio.sleep(POLL)
    raise TimeoutError(f"{what} within {timeout:g}s")


@asynccontextmanager
async def team(server: PgServer, tmp: Path, processes: int, slots: int, users: int, job_seconds: float,
               validate: bool) -> AsyncIterator[Team]:
    url = server.new_database()
    fake = TimedFakeDiscord(validate=validate)
    await fake.start()
    sim = Simulator(token=SIM_TOKEN, job_seconds=job_seconds, progress_steps=1)
    await sim.start()
    ports = [free_port() for _ in range(processes)]
    bots: list[SubprocessBot] = []
    run_number = next(RUNS)
    try:
        async with Balancer(ports) as balancer:
            for number, port in enumerate(ports):
                env = bot_env(fake, sim, tmp / "unused.db", callbacks=False, port=port, DATABASE_URL=url,
                              PUBLIC_URL=balancer.url, USEAPI_MAX_JOBS=slots, USER_MAX_QUEUED=0, POLL_INTERVAL=15,
                              USEAPI_RETRY_SECONDS=1, LOG_LEVEL="INFO")
                env["PYTHONUNBUFFERED"] = "1"
                bots.append(SubprocessBot(env, tmp / f"run{run_number}.bot{number}.log"))
            await bots[0].start(fake, timeout=60)
            await until(lambda: _is(role_of(ports[0]), "connected"), 60, "the first process connected")
            for bot, port in zip(bots[1:], ports[1:], strict=True):
                await bot.start(fake, timeout=60)
                await until(lambda port=port: _is(role_of(port), "standby"), 60, "a process standing by")
            members = list(BUILTIN_USERS[:users])
            members += [fake.add_user(f"bench{n}").id for n in range(len(members), users)]
            yield Team(fake, sim, server, url, bots, ports, members)
    finally:
        for bot in bots:
            if bot.proc is not None and bot.proc.returncode is None:
                try:
                    await bot.terminate(timeout=20)
                except TimeoutError:
                    await bot.kill()
        await sim.close()
        await fake.close()
        server.drop_database(url)


async def _is(answer: Any, wanted: str) -> bool:
    return bool(await answer == wanted)


def accepted(bot: SubprocessBot) -> int:
    return sum(1 for line in bot.log_text().splitlines() if ": accepted by " in line)


def errors(bots: list[SubprocessBot]) -> list[str]:
    return [line for bot in bots for line in bot.log_text().splitlines() if " ERROR " in line or "Traceback" in line]


async def send_all(run: Team, jobs: int, label: str) -> float:
    """Every member's commands at once; the time.monotonic() of the first."""
    started = time.monotonic()
    await asyncio.gather(*(run.fake.slash("imagine", {"prompt": f"{label} {n} --v 6.1"},
                                          user=run.users[n % len(run.users)]) for n in range(jobs)))
    return started


def check_once(run: Team, jobs: int) -> list[str]:
    """Problems with what reached the channel and the backend: a job missing, posted twice, sent twice."""
    problems = [f"job {n} posted {len(results_for(run.fake, n))} times" for n in range(1, jobs + 1)
                if len(results_for(run.fake, n)) != 1]
    refs = [call.body["replyRef"] for call in run.sim.calls("jobs/imagine") if call.body]
    if len(refs) != len(set(refs)):
        problems.append(f"{len(refs) - len(set(refs))} jobs sent twice")
    if run.sim.rejections_429:
        problems.append(f"{run.sim.rejections_429} 429s")
    if run.fake.spec_errors:
        problems.append(f"{len(run.fake.spec_errors)} spec errors, first: {run.fake.spec_errors[0]}")
    return problems


async def makespan(server: PgServer, tmp: Path, processes: int, slots: int, jobs: int, users: int,
                   job_seconds: float, validate: bool) -> dict[str, Any]:
    async with team(server, tmp, processes, slots, users, job_seconds, validate) as run:
        started = await send_all(run, jobs, f"p{processes} s{slots}")
        await run.fake.wait_results(jobs, timeout=math.ceil(jobs / slots) * job_seconds * 4 + 60)
        span = max(run.fake.result_at.values()) - started
        problems = check_once(run, jobs) + errors(run.bots)
        return {"span": span, "ratio": span / (math.ceil(jobs / slots) * job_seconds), "problems": problems,
                "most": run.sim.max_executing_seen, "sent_by": [accepted(bot) for bot in run.bots]}


async def kill_run(server: PgServer, tmp: Path, validate: bool, jobs: int = 30, slots: int = 3,
                   job_seconds: float = 2.0) -> dict[str, Any]:
    async with team(server, tmp, 2, slots, 5, job_seconds, validate) as run:
        await send_all(run, jobs, "kill")
        await until(lambda: len(run.rows("SELECT id FROM jobs")) == jobs, 60, "every command filed")
        await run.fake.wait_results(jobs // 3, timeout=120)
        # The gateway holder's key: the process lock held by the same server backend as the gateway lock.
        holder = run.rows(
            "SELECT p.objid::bigint AS key FROM pg_locks g JOIN pg_locks p ON p.pid = g.pid WHERE g.locktype = "
            "'advisory' AND g.classid = $1 AND g.objid = $2 AND p.classid = $3 AND p.objsubid = 2",
            GATEWAY_LOCK[0], GATEWAY_LOCK[1], PROCESS_LOCKS)[0]["key"]
        held = {row["id"] for row in run.rows("SELECT id FROM jobs WHERE claimed_by = $1 AND lease_until IS NOT NULL",
                                              holder)}
        identifies = run.fake.gateway.identifies
        killed_wall, killed = time.time(), time.monotonic()
        await run.bots[0].kill()
        gateway = until(lambda: run.fake.gateway.identifies > identifies and run.fake.gateway.active, 60,
                        "the gateway back")
        taken = until(lambda: not run.rows("SELECT id FROM jobs WHERE claimed_by = $1 AND lease_until IS NOT NULL",
                                           holder), 60, "the dead process's jobs taken over")
        back, moved = await asyncio.gather(gateway, taken)

        def moving() -> bool:
            sent = run.rows("SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND submitted_at > $2", sorted(held),
                            killed_wall)
            return bool(sent) or any(run.fake.result_at.get(job, 0.0) > killed for job in held)

        again = await until(moving, 120, "a job of the dead process moving again")
        await run.fake.wait_results(jobs, timeout=180)
        await asyncio.sleep(1.0)  # a late duplicate would show by now
        problems = check_once(run, jobs) + errors(run.bots[1:])
        return {"takeover": moved - killed, "moving": again - killed, "gateway": back - killed, "held": len(held),
                "problems": problems, "most": run.sim.max_executing_seen}


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--runs", type=int, default=3, help="runs per case (makespans)")
    p.add_argument("--processes", default="1,2,3")
    p.add_argument("--kill-runs", type=int, default=3)
    p.add_argument("--users", type=int, default=5)
    p.add_argument("--job-seconds", type=float, default=2.0)
    args = p.parse_args()
    header("multiprocess", args)
    counts = [int(n) for n in args.processes.split(",")]
    sizes = [(3, 30), (15, 150)]
    seconds = args.job_seconds
    if args.small:
        args.runs, args.kill_runs, counts, sizes, seconds = 1, 0, [2], [(3, 6)], 0.5
    server = start_server()
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="multiprocess-") as folder:
            tmp = Path(folder)
            for slots, jobs in sizes:
                for processes in counts:
                    outcomes = []
                    for number in range(1, args.runs + 1):
                        outcome = await makespan(server, tmp, processes, slots, jobs, args.users, seconds,
                                                 args.validate)
                        outcomes.append(outcome)
                        note(f"{processes} process(es), {slots} slots, {jobs} jobs, run {number}: makespan "
                             f"{outcome['span']:.2f} s (ratio {outcome['ratio']:.3f}), most executing "
                             f"{outcome['most']}, sent by each {outcome['sent_by']}"
                             + (f"; PROBLEMS {outcome['problems'][:3]}" if outcome["problems"] else ""))
                        failed |= bool(outcome["problems"]) or outcome["most"] > slots
                    ratio = median([o["ratio"] for o in outcomes])
                    name = f"multiprocess.p{processes}.slots{slots}.jobs{jobs}"
                    figure(f"{name}.makespan", median([o["span"] for o in outcomes]),
                           f"s (ideal {math.ceil(jobs / slots) * seconds:g} s)")
                    figure(f"{name}.ratio", ratio, "", target="<= 1.05", met=ratio <= 1.05)
                    figure(f"{name}.max_executing", max(o["most"] for o in outcomes), f"(slots {slots})")
            kills = []
            for number in range(1, args.kill_runs + 1):
                kill = await kill_run(server, tmp, args.validate)
                kills.append(kill)
                note(f"kill run {number}: {kill['held']} jobs held by the killed process; taken over after "
                     f"{kill['takeover']:.2f} s, moving again after {kill['moving']:.2f} s, gateway back after "
                     f"{kill['gateway']:.2f} s" + (f"; PROBLEMS {kill['problems'][:3]}" if kill["problems"] else ""))
                failed |= bool(kill["problems"])
            if kills:
                figure("multiprocess.kill.takeover", median([k["takeover"] for k in kills]),
                       "s (kill -9 -> survivor holds the dead one's jobs; POLL_INTERVAL 15 s)")
                figure("multiprocess.kill.moving_again", median([k["moving"] for k in kills]),
                       "s (kill -9 -> one of them sent or posted by the survivor)")
                figure("multiprocess.kill.gateway_back", median([k["gateway"] for k in kills]),
                       "s (kill -9 -> the survivor's gateway session READY)")
                figure("multiprocess.kill.problems", sum(len(k["problems"]) for k in kills), "",
                       target="0", met=not any(k["problems"] for k in kills))
    finally:
        server.stop()
    footer()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
