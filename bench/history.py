"""Benchmark 4: a long history costs the bot neither memory nor start-up time, and /jobs stays instant.

`--jobs` rows (100,000) are written straight into a fresh database before the bot starts: finished jobs of
50 members over half a year, each with the job JSON useapi returned, plus a few hundred unfinished ones
(queued behind three jobs still running in the simulator, and a few caught mid-submission) for the resume
scan to pick up. Then, `--starts` times: start `python -m bot`, time process start -> gateway READY -> first
interaction acknowledged, let it settle, read its resident memory; and time `/jobs` pages (first page, and
"Older ›" clicks deep into a member's history) as the fake Discord sees them. The same start-up is measured
on an empty database for comparison.

With `--store both` (the default) all of it runs on SQLite, then on PostgreSQL (DATABASE_URL, a server of the
benchmark's own: tests/pgserver.py), side by side in one sitting: the same rows, written into SQLite and copied
across with the store's own copy (bot.store.copy); PostgreSQL's figures are named history.postgresql.*.

    .venv/bin/python bench/history.py [--small] [--jobs 100000] [--starts 3] [--pages 200] [--store both]
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BUILTIN_USERS,
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
    proc_status,
    profile,
    stack,
)
from bot.backends.useapi.simulator import GRID_BUTTONS, UPSCALE_BUTTONS
from bot.store import PostgresStore, SqliteStore, open_store
from bot.store.copy import copy_store
from tests.fakediscord import CHANNEL_ID, GUILD_ID, InteractionRecord
from tests.harness import SIM_TOKEN
from tests.pgserver import PgServer, start_server

_VOCABULARY = ("lighthouse dusk cinematic lighting volumetric fog 35mm portrait old sailor watercolor city skyline "
               "isometric game asset neon rain forest spirit macro photo dew drop brutalist concrete library art "
               "nouveau poster hyperreal fruit bowl of a the at in")
WORDS = _VOCABULARY.split()
PARAMS = ("", " --ar 16:9", " --ar 2:3 --v 6.1", " --stylize 250", " --chaos 20 --ar 3:2", " --niji 6")
FINAL_MIX = (("completed", 0.88), ("failed", 0.05), ("moderated", 0.02), ("cancelled", 0.03), ("duplicate", 0.02))
DAY = 86_400.0
QUEUED_ROWS = 300
SUBMITTING_ROWS = 5
RUNNING_ROWS = 3  # as many as USEAPI_MAX_JOBS, so nothing new is sent while the bot is measured


def owners(count: int) -> list[int]:
    return [*BUILTIN_USERS, *(1_200_000_000_000_000_000 + n for n in range(count - len(BUILTIN_USERS)))]


def job_body(number: int, prompt: str, button: str | None, status: str, created: float) -> dict[str, Any]:
    """What useapi answered for a job, as the relay keeps it (about 1.3 KB of JSON)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(created))
    jobid = f"job:{stamp}{number % 1000:03d}-user:1308-channel:1100000000000000001-bot:midjourney-{number}"
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created))
    body: dict[str, Any] = {
        "jobid": jobid, "verb": "button" if button else "imagine", "status": status, "created": iso,
        "updated": iso, "prompt": prompt, "discord": "abc…xyz", "channel": "1100000000000000001",
        "server": "1000000000000000001", "maxJobs": 3, "replyRef": str(number),
        "replyUrl": "https://relay.example.org/callbacks/useapi/***/" + str(number),
        "messageId": str(1_300_000_000_000_000_000 + number), "code": 200,
        "content": f"**{prompt}** - <@1308> (fast)",
        "timestamp": iso,
    }
    if button:
        body.update(button=button, parentJobId=f"job:{stamp}-parent-{number}")
    if status == "completed":
        name = f"{number:024x}.png"
        url = f"https://cdn.discordapp.com/attachments/1100000000000000001/{name}?ex=6800000&is=67f0000&hm={'ab' * 32}&"
        body.update(
            buttons=list(UPSCALE_BUTTONS if button in ("U1", "U2", "U3", "U4") else GRID_BUTTONS),
            attachments=[{"id": str(1_310_000_000_000_000_000 + number), "url": url,
                          "proxy_url": url.replace("cdn.", "media."), "filename": f"sailor_{name}",
                          "content_type": "image/png", "size": 7_340_032, "width": 2048, "height": 2048}],
        )
    elif status in ("failed", "moderated"):
        body.update(error="Job failed", errorDetails="Sorry! Our AI moderators feel your prompt might be against "
                    "our community standards." if status == "moderated" else "Midjourney could not finish it")
    return body


def fill(path: Path, count: int, seed: int = 6) -> dict[int, int]:
    """Write `count` finished jobs (plus the unfinished ones) into the store at `path`; {owner: jobs}."""
    rng = random.Random(seed)
    people = owners(50)
    weights = [rng.uniform(0.3, 3.0) for _ in people]
    statuses = [s for s, _ in FINAL_MIX]
    status_weights = [w for _, w in FINAL_MIX]
    now = time.time()
    start = now - 180 * DAY
    per_owner: dict[int, int] = {}
    last_of: dict[int, int] = {}
    rows: list[tuple[Any, ...]] = []
    for number in range(1, count + 1):
        owner = rng.choices(people, weights)[0]
        per_owner[owner] = per_owner.get(owner, 0) + 1
        created = start + (now - start - DAY) * number / count
        parent = last_of.get(owner) if rng.random() < 0.6 else None
        button = rng.choice(("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄")) if parent else None
        words = rng.randint(4, 30)
        prompt = " ".join(rng.choice(WORDS) for _ in range(words)) + rng.choice(PARAMS)
        status = rng.choices(statuses, status_weights)[0]
        body = job_body(number, prompt, button, status, created)
        done = created + rng.uniform(30, 90)
        completed = status == "completed"
        buttons = [{"name": name, "ref": name} for name in body.get("buttons", [])]
        media = [{key: a[key] for key in ("url", "content_type", "size", "width", "height", "filename")}
                 for a in body.get("attachments", [])]
        rows.append((
            GUILD_ID, CHANNEL_ID, owner, parent, button, button, prompt, None, "useapi", body["jobid"], status,
            100 if completed else None, json.dumps(buttons, ensure_ascii=False), json.dumps(media),
            json.dumps(body, ensure_ascii=False), 1_300_000_000_000_000_000 + number,
            body["attachments"][0]["url"] if completed else None, 1,
            None if completed else "Midjourney could not finish this job", None if completed else "job_failed", 1,
            0, 0, created, done, created + 0.05, done, done, None,
        ))
        if status == "completed" and button not in ("U1", "U2", "U3", "U4"):
            last_of[owner] = number
    sql = """INSERT INTO jobs (guild_id, channel_id, owner_id, parent_id, button, button_ref, prompt, button_prompt,
                               backend, backend_job_id, status, progress, buttons, media, job_json, message_id,
                               image_url, published, error, error_kind, attempts, not_before, simulated, created_at,
                               updated_at, submitted_at, last_event_at, finished_at, lease_until)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
    with sqlite3.connect(path) as conn:
        conn.executemany(sql, rows)
    return per_owner


async def add_unfinished(bench: Stack, session: aiohttp.ClientSession) -> None:
    """Jobs a busy team leaves behind at a restart: some running at useapi, many queued, a few mid-submission."""
    people = owners(50)
    auth = {"Authorization": f"Bot {bench.fake.token}"}
    now = time.time()
    with sqlite3.connect(bench.db_path) as conn:
        for index in range(RUNNING_ROWS):
            async with session.post(f"{bench.sim.base_url}/jobs/imagine", headers={"Authorization":
                                    f"Bearer {SIM_TOKEN}"}, json={"prompt": f"still running {index}",
                                                                  "maxJobs": RUNNING_ROWS}) as response:
                body = await response.json()
            async with session.post(f"{bench.fake.api_base}/channels/{CHANNEL_ID}/messages", headers=auth,
                                    json={"content": f"working on running job {index}"}) as response:
                message = await response.json()
            conn.execute(
                """INSERT INTO jobs (guild_id, channel_id, owner_id, prompt, backend, backend_job_id, status, job_json,
                                     message_id, attempts, created_at, updated_at, submitted_at, last_event_at)
                   VALUES (?, ?, ?, ?, 'useapi', ?, 'running', ?, ?, 1, ?, ?, ?, ?)""",
                (GUILD_ID, CHANNEL_ID, people[index], body["prompt"], body["jobid"], json.dumps(body),
                 int(message["id"]), now - 20, now - 20, now - 20, now - 5))
        for index in range(QUEUED_ROWS + SUBMITTING_ROWS):
            async with session.post(f"{bench.fake.api_base}/channels/{CHANNEL_ID}/messages", headers=auth,
                                    json={"content": f"queued job {index}"}) as response:
                message = await response.json()
            status = "submitting" if index < SUBMITTING_ROWS else "queued"
            conn.execute(
                """INSERT INTO jobs (guild_id, channel_id, owner_id, prompt, backend, status, message_id, attempts,
                                     created_at, updated_at, submitted_at)
                   VALUES (?, ?, ?, ?, 'useapi', ?, ?, ?, ?, ?, ?)""",
                (GUILD_ID, CHANNEL_ID, people[index % len(people)], f"waiting {index} --ar 3:2", status,
                 int(message["id"]), 1 if status == "submitting" else 0, now - 10, now - 10,
                 now - 1 if status == "submitting" else None))


async def first_answer(bench: Stack) -> tuple[float, float]:
    """Seconds from process start to the first /imagine's acknowledgement and to its confirmation reply."""
    record = await bench.fake.slash("imagine", {"prompt": "first after start"}, user=BUILTIN_USERS[0])
    await record.wait_response(timeout=30)
    acked = time.monotonic()
    await record.wait_followup(timeout=30)
    return acked - bench.started_at, time.monotonic() - bench.started_at


async def page_latency(record: InteractionRecord, content_from_original: bool) -> float:
    """Milliseconds from the interaction sent to its page shown (type 4 reply, or a type 7 edit)."""
    response = await record.wait_response(timeout=10)
    if response["type"] in (4, 7):
        assert record.ack_latency is not None
        return record.ack_latency * 1000
    # Deferred: the page is shown once the bot fills in its placeholder.
    await record.wait_original(lambda m: bool(m.get("content")), timeout=10)
    del content_from_original
    return (time.monotonic() - record.sent_at) * 1000


def older_button(message: dict[str, Any]) -> str | None:
    for row in message.get("components", []):
        for component in row.get("components", []):
            if str(component.get("label", "")).startswith("Older") and not component.get("disabled"):
                return str(component["custom_id"])
    return None


async def jobs_pages(bench: Stack, pages: int) -> tuple[list[float], list[float]] | None:
    """(/jobs first pages, Older › pages) latencies in ms; None when the bot has no /jobs yet."""
    names = {c["name"] for c in bench.fake.commands.get(None, [])}
    if "jobs" not in names:
        return None
    first: list[float] = []
    deeper: list[float] = []
    users = list(BUILTIN_USERS)
    for index in range(pages):
        user = users[index % len(users)]
        record = await bench.fake.slash("jobs", {}, user=user)
        first.append(await page_latency(record, False))
        message = record.response_message
        # Turn a few pages back from each first page, as someone looking for last week's grid would.
        for _ in range(3):
            if message is None:
                break
            custom_id = older_button(message)
            if custom_id is None:
                break
            click = await bench.fake.click(int(message["id"]), custom_id, user=user)
            deeper.append(await page_latency(click, True))
            message = click.response_message
    return first, deeper


async def probe(bench: Stack, seconds: float, interval: float = 0.1) -> list[float]:
    """/jobs first-page latencies (ms), one every `interval` for `seconds`: catches stalls of the bot's loop
    (a periodic poll pass over the history) that back-to-back pages taken in a few seconds would miss."""
    latencies: list[float] = []
    sent: list[float] = []
    deadline = time.monotonic() + seconds
    users = list(BUILTIN_USERS)
    while time.monotonic() < deadline:
        record = await bench.fake.slash("jobs", {}, user=users[len(latencies) % len(users)])
        latencies.append(await page_latency(record, False))
        sent.append(record.sent_at - bench.started_at)
        await asyncio.sleep(interval)
    # When the slow pages came, in seconds since the bot started: a period of POLL_INTERVAL (15 s) points at
    # the poll pass, scattered ones at the machine.
    slowest = sorted(range(len(latencies)), key=latencies.__getitem__, reverse=True)[:6]
    note("slowest steady pages: " + ", ".join(f"{latencies[i]:.0f} ms at {sent[i]:.1f} s" for i in sorted(slowest)))
    return latencies


async def store_pages(path: Path, url: str | None, per_owner: dict[int, int], count: int) -> list[float]:
    """Milliseconds per Store.list_jobs page (10 jobs, newest first, at a random depth) on this database."""
    store = await open_store(str(path), url)
    rng = random.Random(1)
    busiest = sorted(per_owner, key=per_owner.__getitem__, reverse=True)[:10]
    timings: list[float] = []
    try:
        for _ in range(count):
            owner = rng.choice(busiest)
            before = rng.randint(1, max(2, sum(per_owner.values())))
            started = time.perf_counter()
            await store.jobs.list_jobs(GUILD_ID, owner, before_id=before, limit=10)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        await store.close()
    return timings


async def copied(path: Path, url: str) -> None:
    """The SQLite database at `path` copied whole into the (fresh) PostgreSQL database at `url`."""
    source, target = await SqliteStore.open(str(path)), await PostgresStore.open(url)
    try:
        await copy_store(source, target)
    finally:
        await source.close()
        await target.close()


async def measure(args: Any, jobs: int, server: PgServer | None = None) -> dict[str, Any]:
    """The start-ups, memory and pages with `jobs` in the history: on SQLite, or on PostgreSQL with a `server`."""
    results: dict[str, Any] = {"ready": [], "first_ack": [], "first_reply": [], "rss": [], "hwm": []}
    url = server.new_database() if server is not None else None
    env: dict[str, Any] = {"DATABASE_URL": url} if url else {}
    async with stack(sim={"job_seconds": None, "progress_steps": 0}, validate=args.validate, **env) as bench:
        store = await SqliteStore.open(str(bench.db_path))  # the schema, as the bot itself would create it
        await store.close()
        started = time.monotonic()
        per_owner = fill(bench.db_path, jobs) if jobs else {}
        async with aiohttp.ClientSession() as session:
            await add_unfinished(bench, session)
        if url is not None:
            await copied(bench.db_path, url)
        if jobs:
            size = bench.db_path.stat().st_size / 2**20
            note(f"{jobs} finished jobs + {QUEUED_ROWS} queued + {SUBMITTING_ROWS} submitting + {RUNNING_ROWS} "
                 f"running written in {time.monotonic() - started:.1f} s; SQLite database {size:.0f} MiB"
                 + (", copied into PostgreSQL" if url else ""))
        for start_number in range(1, args.starts + 1):
            spy = None
            ready = await bench.start_bot()
            if args.profile and jobs and start_number == 1:
                spy = await profile(bench.pid, 4, args.profile / "startup.txt")
            ack, replied = await first_answer(bench)
            await asyncio.sleep(args.settle / 2)
            # CPU while nothing happens but a backlog waits for busy slots: should be close to nothing.
            cpu0 = cpu_seconds(bench.pid)
            await asyncio.sleep(args.settle / 2)
            idle_cpu = (cpu_seconds(bench.pid) - cpu0) / (args.settle / 2)
            results.setdefault("idle_cpu", []).append(idle_cpu)
            status = proc_status(bench.pid)
            results["ready"].append(ready)
            results["first_ack"].append(ack)
            results["first_reply"].append(replied)
            results["rss"].append(status["VmRSS"] / 1024)
            results["hwm"].append(status["VmHWM"] / 1024)
            note(f"{'history' if jobs else 'empty'} start {start_number}: READY {ready:.2f} s, first ack {ack:.2f} s, "
                 f"first reply {replied:.2f} s, idle CPU {idle_cpu:.0%}, VmRSS {status['VmRSS'] / 1024:.1f} MiB "
                 f"(peak {status['VmHWM'] / 1024:.1f})")
            if spy is not None:
                await spy.wait()
                print_profile(args.profile / "startup.txt", "bot start-up on the full history", 20)
            if start_number == args.starts:
                results["pages"] = await jobs_pages(bench, args.pages) if jobs else None
                if results["pages"] is not None:
                    spy = None
                    if args.profile:
                        spy = await profile(bench.pid, args.probe_seconds, args.profile / "steady.txt")
                    results["probe"] = await probe(bench, args.probe_seconds)
                    if spy is not None:
                        await spy.wait()
                        print_profile(args.profile / "steady.txt", "bot during the steady /jobs probe", 20)
                    status = proc_status(bench.pid)
                    results["rss_after_pages"] = status["VmRSS"] / 1024
            bench.check_log()
            await bench.stop_bot()
        if jobs:
            results["store_pages"] = await store_pages(bench.db_path, url, per_owner, args.pages * 5)
            results["busiest"] = max(per_owner.values())
    if server is not None and url is not None:
        server.drop_database(url)
    return results


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--settle", type=float, default=5.0, help="seconds after the first answer before reading memory")
    p.add_argument("--profile", type=Path, help="folder for a py-spy profile of the first start-up")
    p.add_argument("--probe-seconds", type=float, default=35.0,
                   help="then one /jobs every 100 ms for this long (covers two 15 s poll passes)")
    p.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    args = p.parse_args()
    if args.small:
        args.jobs, args.starts, args.pages, args.settle, args.probe_seconds = 2_000, 1, 8, 0.5, 0.5
    header("history", args)
    stores = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    server = start_server() if "postgresql" in stores else None
    try:
        for store in stores:
            on = server if store == "postgresql" else None
            report("history" if store == "sqlite" else "history.postgresql", args,
                   await measure(args, 0, on), await measure(args, args.jobs, on))
    finally:
        if server is not None:
            server.stop()
    footer()
    return 0


def report(name: str, args: Any, empty: dict[str, Any], full: dict[str, Any]) -> None:
    figure(f"{name}.empty.startup_ready", median(empty["ready"]), "s")
    figure(f"{name}.empty.startup_first_ack", median(empty["first_ack"]), "s")
    figure(f"{name}.empty.rss", median(empty["rss"]), "MiB")
    figure(f"{name}.jobs", args.jobs, "finished jobs in the store")
    figure(f"{name}.startup_ready", median(full["ready"]), "s (process start -> gateway READY)")
    figure(f"{name}.startup_first_ack", median(full["first_ack"]), "s (process start -> first interaction acked)")
    figure(f"{name}.startup_first_reply", median(full["first_reply"]), "s (process start -> first reply posted)")
    rss = median(full["rss"])
    figure(f"{name}.rss", rss, "MiB (VmRSS after settling)", target="< 150 MiB", met=rss < 150)
    figure(f"{name}.rss_peak", max(full["hwm"]), "MiB (VmHWM)")
    figure(f"{name}.idle_cpu", 100 * median(full["idle_cpu"]), "% of a core (settled, backlog waiting for full slots)")
    figure(f"{name}.empty.idle_cpu", 100 * median(empty["idle_cpu"]), "% of a core")
    pages = full.get("pages")
    if pages is None:
        figure(f"{name}.jobs_page_p99", "pending", "(the bot has no /jobs command yet)")
    else:
        first, deeper = pages
        figure(f"{name}.jobs_page_median", median(first), "ms (/jobs first page, as the fake Discord sees it)")
        p99 = percentile(first, 99)
        figure(f"{name}.jobs_page_p99", p99, "ms", target="< 20 ms", met=p99 < 20)
        if deeper:
            figure(f"{name}.jobs_older_page_median", median(deeper), f"ms ({len(deeper)} 'Older ›' clicks)")
            figure(f"{name}.jobs_older_page_p99", percentile(deeper, 99), "ms")
        figure(f"{name}.rss_after_pages", full["rss_after_pages"], "MiB")
        steady = full["probe"]
        figure(f"{name}.jobs_steady_p99", percentile(steady, 99),
               f"ms (one /jobs every 100 ms for {args.probe_seconds:g} s, {len(steady)} pages)",
               target="< 20 ms", met=percentile(steady, 99) < 20)
        figure(f"{name}.jobs_steady_max", max(steady), "ms")
    figure(f"{name}.store_page_p99", percentile(full["store_pages"], 99),
           "ms (Store.list_jobs, 10 rows, random depth)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
