"""Benchmark 3: callbacks. (a) How many the bot's listener takes per second, against a bare aiohttp server;
(b) how fast a burst of finished jobs becomes result cards in Discord.

(a) Intake: 15 real jobs run in the simulator (manual mode: they never finish on their own); a load client
in this process POSTs realistic progress callbacks for them to `<PUBLIC_URL>/callbacks/useapi/<secret>/<ref>`
over `--connections` keep-alive connections for `--seconds`, and counts the 200s: each was authenticated,
parsed, written to SQLite and answered. The same client then loads a bare aiohttp server (answers 200,
reads nothing) in its own process; rounds alternate, the ratio is bot / bare.

(b) End to end: 15 users queue `--jobs` /imagine commands, USEAPI_MAX_JOBS=15; each round the simulator
completes all 15 executing jobs at once, and the relay re-reads each (GET jobs/?jobid=), fetches its image
and posts the result card. A round's rate is 15 / (first completion sent -> last card stored); the
latency is per job, completion sent -> card stored.

    .venv/bin/python bench/callbacks.py [--small] [--rounds 3] [--seconds 5] [--connections 16] [--jobs 150]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Stack,
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
from tests.harness import ref_number
from tests.ports import free_port

SECRET = "bench-webhook-secret-0123456789abcdef"
SLOTS = 15


async def wait_running(bench: Stack, count: int, timeout: float = 30) -> None:
    """Until the bot's store has `count` jobs running at useapi (and so holding a slot)."""
    deadline = time.monotonic() + timeout
    while bench.statuses().get("running", 0) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {count} running jobs, store has {bench.statuses()}")
        await asyncio.sleep(0.02)


async def load(urls: list[str], bodies: list[bytes], connections: int, seconds: float) -> tuple[int, int, float]:
    """POST the bodies round-robin for `seconds` over `connections` connections; (ok, other, client CPU s)."""
    ok = other = 0
    cpu0 = time.process_time()
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(offset: int) -> None:
            nonlocal ok, other
            index = offset
            while time.monotonic() < stop:
                slot = index % len(urls)
                async with session.post(urls[slot], data=bodies[index % len(bodies)], headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        ok += 1
                    else:
                        other += 1
                index += connections

        await asyncio.gather(*(worker(i) for i in range(connections)))
    return ok, other, time.process_time() - cpu0


def progress_bodies(bench: Stack, count: int) -> tuple[list[str], list[bytes]]:
    """For every executing job, the callback URL and bodies with progress 1..`count`%, as useapi sends them."""
    urls: list[str] = []
    bodies: list[bytes] = []
    executing = bench.sim.executing()
    for step in range(count):
        for jobid in executing:
            job = dict(bench.sim.jobs[jobid])
            percent = 1 + step % 99
            job.update(status="progress", code=200,
                       content=f"**{job.get('prompt', '')}** - <@1308> ({percent}%) (fast)")
            if step == 0:
                urls.append(f"{bench.public_url}/callbacks/useapi/{SECRET}/{job['replyRef']}")
            bodies.append(json.dumps(job).encode())
    return urls, bodies


async def intake(args: Any) -> None:
    async with stack(sim={"job_seconds": None, "progress_steps": 0}, USEAPI_MAX_JOBS=SLOTS,
                     WEBHOOK_SECRET=SECRET, POLL_INTERVAL=3600, validate=args.validate) as bench:
        users = bench.add_users(SLOTS)
        await bench.start_bot()
        await asyncio.gather(*(bench.fake.slash("imagine", {"prompt": f"intake {u}"}, user=u) for u in users))
        await wait_running(bench, SLOTS)
        urls, bodies = progress_bodies(bench, 20)
        # The bare server's URLs have the same shape and the same bodies.
        bare_port = free_port()
        bare = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"from bench.common import serve_bare; serve_bare({bare_port})", cwd=str(ROOT))
        try:
            bare_urls = [u.replace(bench.public_url, f"http://127.0.0.1:{bare_port}") for u in urls]
            for _ in range(100):
                try:
                    await load(bare_urls[:1], bodies[:1], 1, 0.01)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            # Warm both up (connections, first-call imports), then alternate measured rounds.
            await load(urls, bodies, args.connections, 0.5)
            await load(bare_urls, bodies, args.connections, 0.5)
            rates_bot: list[float] = []
            rates_bare: list[float] = []
            ratios: list[float] = []
            if args.profile:
                spy = await profile(bench.pid, args.seconds, args.profile / "intake.txt")
                await load(urls, bodies, args.connections, args.seconds)
                if spy is not None:
                    await spy.wait()
                    print_profile(args.profile / "intake.txt", "bot process under callback load")
            for round_number in range(1, args.rounds + 1):
                bot_cpu0 = cpu_seconds(bench.pid)
                ok_bot, bad_bot, client_cpu_bot = await load(urls, bodies, args.connections, args.seconds)
                bot_cpu = cpu_seconds(bench.pid) - bot_cpu0
                bare_cpu0 = cpu_seconds(bare.pid)
                ok_bare, bad_bare, client_cpu_bare = await load(bare_urls, bodies, args.connections, args.seconds)
                bare_cpu = cpu_seconds(bare.pid) - bare_cpu0
                rate_bot, rate_bare = ok_bot / args.seconds, ok_bare / args.seconds
                rates_bot.append(rate_bot)
                rates_bare.append(rate_bare)
                ratios.append(rate_bot / rate_bare)
                note(f"round {round_number}: bot {rate_bot:.0f}/s ({bad_bot} not 200, bot CPU "
                     f"{bot_cpu / args.seconds:.0%}, client CPU {client_cpu_bot / args.seconds:.0%}); bare "
                     f"{rate_bare:.0f}/s ({bad_bare} not 200, server CPU {bare_cpu / args.seconds:.0%}, client "
                     f"CPU {client_cpu_bare / args.seconds:.0%}); ratio {rate_bot / rate_bare:.2f}")
        finally:
            bare.terminate()
            await bare.wait()
        with bench.db() as conn:
            progress = conn.execute("SELECT MIN(progress), MAX(progress) FROM jobs WHERE status = 'running'").fetchone()
        note(f"progress stored for the running jobs after the load: min {progress[0]}%, max {progress[1]}%")
        bench.check_log()
    figure("callbacks.intake.bot", median(rates_bot), "callbacks/s")
    figure("callbacks.intake.bare", median(rates_bare), "requests/s")
    figure("callbacks.intake.ratio", median(ratios), "", target=">= 0.3", met=median(ratios) >= 0.3)


async def end_to_end(args: Any) -> None:
    async with stack(sim={"job_seconds": None, "progress_steps": 0}, USEAPI_MAX_JOBS=SLOTS,
                     validate=args.validate) as bench:
        users = bench.add_users(SLOTS)
        await bench.start_bot()
        records = await asyncio.gather(*(bench.fake.slash("imagine", {"prompt": f"burst {i} --ar 16:9"},
                                                          user=users[i % len(users)]) for i in range(args.jobs)))
        for record in records:
            await record.wait_response(timeout=15)
        latencies: list[float] = []
        rates: list[float] = []
        total_time = 0.0
        done = 0
        cpu0 = cpu_seconds(bench.pid)
        spy = None
        if args.profile:
            spy = await profile(bench.pid, 3, args.profile / "e2e.txt")
            await asyncio.sleep(0.3)  # py-spy attaches
        while done < args.jobs:
            batch = min(SLOTS, args.jobs - done)
            await wait_running(bench, batch)
            executing = bench.sim.executing()
            refs = [ref_number(bench.sim.jobs[j]["replyRef"]) or 0 for j in executing]
            start = time.monotonic()
            await asyncio.gather(*(bench.sim.complete(j) for j in executing))
            await bench.fake.wait_results(done + len(executing), timeout=60)
            ends = [bench.fake.result_at[r] for r in refs]
            latencies += [(end - start) * 1000 for end in ends]
            span = max(ends) - start
            total_time += span
            rates.append(len(executing) / span)
            done += len(executing)
        cpu = cpu_seconds(bench.pid) - cpu0
        if spy is not None:
            await spy.wait()
            print_profile(args.profile / "e2e.txt", "bot during the first completion bursts")
        gets = len([r for r in bench.sim.requests if r.path == "/v2/jobs/" and r.method == "GET"])
        images = len([r for r in bench.sim.requests if "/attachments/" in r.path])
        cards = sum(1 for m in bench.fake.messages.values() if m.get("attachments") and m.get("components"))
        note(f"{done} jobs in {len(rates)} rounds of up to {SLOTS}: {gets} GET jobs/?jobid=, {images} image "
             f"downloads, {cards} result cards with image and buttons; bot CPU {cpu:.2f} s")
        bench.check_log()
    figure("callbacks.e2e.rate_median_round", median(rates), "jobs/s", target=">= 50", met=median(rates) >= 50)
    figure("callbacks.e2e.rate_worst_round", min(rates), "jobs/s")
    figure("callbacks.e2e.rate_overall", done / total_time, "jobs/s (all rounds' jobs / their summed spans)")
    figure("callbacks.e2e.latency_median", median(latencies), "ms (completion sent -> card stored)")
    figure("callbacks.e2e.latency_p99", percentile(latencies, 99), "ms")


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, default=3, help="intake rounds (bot then bare)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of one intake load")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--jobs", type=int, default=150, help="jobs completed in bursts of 15 (end to end)")
    p.add_argument("--profile", type=Path, help="folder for a py-spy profile of the bot under intake load")
    args = p.parse_args()
    if args.small:
        args.rounds, args.seconds, args.connections, args.jobs = 1, 0.5, 4, 20
    header("callbacks", args)
    await intake(args)
    await end_to_end(args)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
