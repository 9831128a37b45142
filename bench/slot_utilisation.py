"""Benchmark 2: the relay keeps every Midjourney slot busy, and never earns a 429 it could have avoided.

Each run: a fresh bot with USEAPI_MAX_JOBS=<slots>; `--users` members send all their /imagine commands at
once; every job takes `--job-seconds` in the simulator. The makespan runs from the first command sent to the
last result card stored by the fake Discord; the ideal is ceil(jobs / slots) x job-seconds. The simulator's
own span (first job created to last job completed) is reported beside it.

    .venv/bin/python bench/slot_utilisation.py [--small] [--runs 3] [--no-polling-run] [--backend useapi|mjproxy|both]

With `--backend both` (the default) every case runs on the useapi v2 simulator and on the mj-proxy simulator,
one after the other, in one sitting: MJPROXY_MAX_JOBS is the slots, and the proxy runs as many at once.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import figure, footer, header, median, note, parser, stack


@dataclass(frozen=True)
class Case:
    backend: str
    slots: int
    jobs: int
    users: int
    job_seconds: float
    callbacks: bool
    poll_interval: float

    @property
    def ideal(self) -> float:
        return math.ceil(self.jobs / self.slots) * self.job_seconds

    @property
    def name(self) -> str:
        mode = "callbacks" if self.callbacks else f"polling{self.poll_interval:g}s"
        where = "" if self.backend == "useapi" else f"{self.backend}."
        return f"{where}slots{self.slots}.jobs{self.jobs}.{mode}"


@dataclass(frozen=True)
class Outcome:
    makespan: float  # first command sent -> last result card in Discord
    sim_span: float  # first job created at useapi -> last job completed at useapi
    first_submit: float  # first command sent -> first job created at useapi
    tail: float  # last completion at useapi -> last result card in Discord
    rejections_429: int
    max_executing: int
    completed: int


def _stamp(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _spans(case: Case, sim: Any) -> tuple[float, float, int, int, int]:
    """(first created, last completed) at the backend as Unix times, completed jobs, refusals, most running."""
    if case.backend == "mjproxy":
        tasks = [t for t in sim.tasks.values() if t.get("action") == "IMAGINE"]
        done = [t for t in tasks if t["status"] == "SUCCESS"]
        return (min(t["submitTime"] for t in tasks) / 1000, max(t["finishTime"] for t in done) / 1000, len(done),
                sim.queue_full_answers, sim.max_running_seen)
    jobs = [j for j in sim.jobs.values() if j.get("verb") == "imagine"]
    finished = [j for j in jobs if j["status"] == "completed"]
    return (min(_stamp(j["created"]) for j in jobs), max(_stamp(j["updated"]) for j in finished), len(finished),
            sim.rejections_429, sim.max_executing_seen)


async def one_run(case: Case, validate: bool) -> Outcome:
    env: dict[str, Any] = {"USEAPI_MAX_JOBS": case.slots, "MJPROXY_MAX_JOBS": case.slots,
                           "POLL_INTERVAL": case.poll_interval}
    sim: dict[str, Any] = {"job_seconds": case.job_seconds, "progress_steps": 1}
    if case.backend == "mjproxy":
        sim["max_running"] = case.slots
    async with stack(sim=sim, callbacks=case.callbacks, validate=validate, backend=case.backend, **env) as bench:
        users = bench.add_users(case.users)
        await bench.start_bot()
        prompts = [(users[i % len(users)], f"slot bench {i} --v 6.1") for i in range(case.jobs)]
        wall0, mono0 = time.time(), time.monotonic()
        records = await asyncio.gather(*(bench.fake.slash("imagine", {"prompt": p}, user=u) for u, p in prompts))
        await bench.fake.wait_results(case.jobs, timeout=case.ideal * 4 + 30)
        end = max(bench.fake.result_at.values())
        unacked = sum(1 for r in records if not r.acknowledged)
        created, finished, completed, refusals, most = _spans(case, bench.sim)
        if unacked:
            note(f"{unacked} commands were not acknowledged")
        bench.check_log()
        return Outcome(
            makespan=end - mono0,
            sim_span=finished - created,
            first_submit=created - wall0,
            tail=(end - mono0) - (finished - wall0),
            rejections_429=refusals,
            max_executing=most,
            completed=completed,
        )


async def run_case(case: Case, runs: int, validate: bool) -> None:
    outcomes: list[Outcome] = []
    for run in range(1, runs + 1):
        outcome = await one_run(case, validate)
        outcomes.append(outcome)
        note(f"{case.name} run {run}: makespan {outcome.makespan:.2f} s (ideal {case.ideal:.0f} s, ratio "
             f"{outcome.makespan / case.ideal:.3f}), useapi span {outcome.sim_span:.2f} s, first submission after "
             f"{outcome.first_submit * 1000:.0f} ms, last completion to last card {outcome.tail * 1000:.0f} ms, "
             f"429s {outcome.rejections_429}, max executing {outcome.max_executing}, completed {outcome.completed}")
    ratio = median([o.makespan / case.ideal for o in outcomes])
    prefix = f"slots.{case.name}"
    figure(f"{prefix}.makespan", median([o.makespan for o in outcomes]), f"s (ideal {case.ideal:.0f} s)")
    target = "<= 1.10" if case.callbacks else None
    figure(f"{prefix}.ratio", ratio, "", target=target, met=ratio <= 1.10 if case.callbacks else None)
    figure(f"{prefix}.useapi_span_ratio", median([o.sim_span / case.ideal for o in outcomes]), "")
    figure(f"{prefix}.completion_to_card", median([o.tail * 1000 for o in outcomes]), "ms (last job)")
    rejections = max(o.rejections_429 for o in outcomes)
    figure(f"{prefix}.rejections_429", rejections, "(worst run: 429s, or the proxy's queue-full answers)",
           target="0", met=rejections == 0)
    figure(f"{prefix}.max_executing", max(o.max_executing for o in outcomes), f"(slots {case.slots})")


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--users", type=int, default=5)
    p.add_argument("--job-seconds", type=float, default=2.0)
    p.add_argument("--no-polling-run", action="store_true", help="skip the polling-only (no PUBLIC_URL) run")
    p.add_argument("--poll-interval", type=float, default=1.0, help="POLL_INTERVAL of the polling-only run")
    p.add_argument("--backend", choices=("useapi", "mjproxy", "both"), default="both")
    args = p.parse_args()
    header("slot_utilisation", args)
    if args.small:
        sizes, args.runs, args.users, seconds = [(3, 6)], 1, 2, 0.5
    else:
        sizes, seconds = [(3, 30), (15, 150)], args.job_seconds
    backends = ("useapi", "mjproxy") if args.backend == "both" else (args.backend,)
    for slots, jobs in sizes:
        for backend in backends:
            # With callbacks on, polling is the slow backstop it is in production (POLL_INTERVAL default 15 s).
            await run_case(Case(backend, slots, jobs, args.users, seconds, callbacks=True, poll_interval=15.0),
                           args.runs, args.validate)
            if not (args.no_polling_run or args.small):
                await run_case(Case(backend, slots, jobs, args.users, seconds, callbacks=False,
                                    poll_interval=args.poll_interval), 1, args.validate)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
