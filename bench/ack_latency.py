"""Benchmark 1: every interaction is acknowledged well inside Discord's 3 s, however slow useapi answers.

Each run: a fresh bot; every user makes completed grids to click on; then the simulator starts answering
every POST after 5 s, and `--interactions` slash commands and button clicks (half each, every click by the
job's owner on a distinct V1..V4/U1..U4 button) arrive in concurrent bursts. The latency is the fake
Discord's: from the INTERACTION_CREATE it sent to the interaction callback it received.

    .venv/bin/python bench/ack_latency.py [--small] [--runs 3] [--interactions 200] [--users 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    JSON,
    Stack,
    button_id,
    cpu_seconds,
    figure,
    footer,
    header,
    median,
    note,
    parser,
    percentile,
    print_profile,
    profile,
    stack,
)
from tests.fakediscord import InteractionRecord

BUTTONS = ("V1", "V2", "V3", "V4", "U1", "U2", "U3", "U4")
DISCORD_WINDOW = 3.0
SLOW_POST = 5.0


async def make_parents(bench: Stack, per_user: int) -> dict[int, list[JSON]]:
    """`per_user` completed grids for every user, as {user: [result message, ...]}."""
    owners: dict[int, int] = {}
    for round_number in range(per_user):
        for user in bench.users:
            record = await bench.fake.slash("imagine", {"prompt": f"parent {round_number} of {user}"}, user=user)
            await record.wait_response(timeout=10)
            await record.wait_followup(timeout=10)
            owners[len(owners) + 1] = user
    await bench.fake.wait_results(len(owners), timeout=60)
    parents: dict[int, list[JSON]] = {user: [] for user in bench.users}
    for number, user in owners.items():
        message = bench.fake.result_message(number)
        assert message is not None
        parents[user].append(message)
    return parents


def plan(bench: Stack, parents: dict[int, list[JSON]], count: int, seed: int) -> list[tuple[str, int, JSON | None,
                                                                                                str]]:
    """`count` interactions, half slash commands and half clicks, spread evenly over the users, shuffled."""
    actions: list[tuple[str, int, JSON | None, str]] = []
    clicks_left = {user: [(message, label) for message in parents[user] for label in BUTTONS] for user in bench.users}
    for index in range(count):
        user = bench.users[index % len(bench.users)]
        if index % 2 == 0 or not clicks_left[user]:
            actions.append(("slash", user, None, f"bench prompt {index} --ar 3:2"))
        else:
            message, label = clicks_left[user].pop(0)
            actions.append(("click", user, message, label))
    random.Random(seed).shuffle(actions)
    return actions


async def send(bench: Stack, action: tuple[str, int, JSON | None, str]) -> InteractionRecord:
    kind, user, message, value = action
    if kind == "slash":
        return await bench.fake.slash("imagine", {"prompt": value}, user=user)
    assert message is not None
    return await bench.fake.click(int(message["id"]), button_id(message, value), user=user)


async def one_run(run: int, args: argparse.Namespace) -> tuple[list[float], int, dict[str, float]]:
    interactions: int = args.interactions
    users: int = args.users
    burst: int = args.burst
    async with stack(sim={"job_seconds": 0.2, "progress_steps": 0}, validate=args.validate) as bench:
        bench.add_users(users)
        await bench.start_bot()
        per_user = max(1, -(-interactions // (2 * users * len(BUTTONS))))
        parents = await make_parents(bench, per_user)
        # From here on every POST to useapi takes 5 s: submissions pile up behind Midjourney, not behind Discord.
        bench.sim._post_delay = SLOW_POST
        actions = plan(bench, parents, interactions, seed=run)
        spy = None
        profile_to: Path | None = args.profile
        if profile_to is not None and run == 1:
            spy = await profile(bench.pid, 4, profile_to / "ack.txt")
            await asyncio.sleep(0.3)  # py-spy attaches
        cpu_before = cpu_seconds(bench.pid)
        started = time.monotonic()
        records: list[InteractionRecord] = []
        for start in range(0, len(actions), burst):
            chunk = actions[start:start + burst]
            records += await asyncio.gather(*(send(bench, action) for action in chunk))
            await asyncio.sleep(0.0 if args.small else 0.25)
        for record in records:
            with contextlib.suppress(TimeoutError):
                await record.wait_response(timeout=10)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(bench.pid) - cpu_before
        latencies = [r.ack_latency for r in records if r.ack_latency is not None]
        unanswered = sum(1 for r in records if r.ack_latency is None)
        kinds = {r.callbacks[0]["type"] for r in records if r.callbacks}
        slow_posts = len(bench.sim.calls("jobs/imagine")) + len(bench.sim.calls("jobs/button")) - per_user * users
        note(f"run {run}: {len(records)} interactions in {elapsed:.1f} s, callback types {sorted(kinds)}, "
             f"{slow_posts} useapi POSTs parked 5 s meanwhile, bot CPU {cpu:.2f} s")
        # Release the POSTs still parked in the delay, so the bot stops without waiting them out.
        bench.sim._post_delay = 0.0
        bench.sim._closing.set()
        if spy is not None and profile_to is not None:
            await spy.wait()
            print_profile(profile_to / "ack.txt", "bot process during the interaction bursts")
        bench.check_log()
        return latencies, unanswered, {"elapsed": elapsed, "cpu": cpu}


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--interactions", type=int, default=200)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--burst", type=int, default=20, help="interactions sent at once")
    p.add_argument("--profile", type=Path, help="folder for a py-spy profile of the bot during run 1")
    args = p.parse_args()
    if args.small:
        args.runs, args.interactions, args.users, args.burst = 1, 16, 2, 8
    header("ack_latency", args)
    pooled: list[float] = []
    run_p99: list[float] = []
    unanswered = 0
    for run in range(1, args.runs + 1):
        latencies, missing, _ = await one_run(run, args)
        ms = [x * 1000 for x in latencies]
        pooled += ms
        unanswered += missing
        run_p99.append(percentile(ms, 99))
        note(f"run {run}: median {median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")
    over = sum(1 for x in pooled if x > DISCORD_WINDOW * 1000)
    figure("ack.interactions", len(pooled) + unanswered, f"over {args.runs} run(s)")
    figure("ack.median", median(pooled), "ms")
    figure("ack.p99", percentile(pooled, 99), "ms", target="< 100 ms", met=percentile(pooled, 99) < 100)
    figure("ack.p99_median_of_runs", median(run_p99), "ms")
    figure("ack.max", max(pooled), "ms")
    figure("ack.over_3s", over + unanswered, "interactions", target="0", met=over + unanswered == 0)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
