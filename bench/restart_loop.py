"""Restart loop: `kill -9` the bot with jobs running and queued, let useapi finish them while it is down,
restart it on the same database, and count what reached the channel. Nothing may be lost or posted twice.

Each run: a fresh fake Discord and useapi simulator in this process, the bot as `python -m bot` (tests/harness.py
SubprocessBot) with USEAPI_MAX_JOBS alternating 1 and 2. One result is made first, so that its buttons are
"old" after the crash. Then several members file jobs (some run, the rest queue), the bot is killed at a
random moment of that work (mid-submission, mid-callback, mid-publish: wherever it is), the simulator
finishes every running job while the bot is down (their callbacks fail and are not retried), and the bot is
restarted. Every job the bot took must end up as exactly one result card, and a click on the old result's U1
must work too. Also counted, though neither is a loss nor a duplicate in the channel: commands the crash cut
off before the bot answered them (Discord tells those users the command failed; the bot never had them),
and jobs sent to useapi twice (a crash mid-submission, when useapi had already finished the first).

    .venv/bin/python bench/restart_loop.py --runs 20 [--jobs 5] [--seed 1] [--validate] [--keep-logs DIR]
    .venv/bin/python bench/restart_loop.py --small      # one run of three jobs, under ten seconds: CI smoke
    .venv/bin/python bench/restart_loop.py --postgres   # the same on PostgreSQL (DATABASE_URL): a server of
                                                        # its own (tests/pgserver.py), a fresh database a run

On PostgreSQL the restarted bot is another process: it takes over the killed one's jobs through the store's
coordination (its session lock is gone), as a surviving replica would. A job caught being sent is looked for
at the backend once the killed process's call has certainly ended (3 x BACKEND_TIMEOUT_SECONDS + 5 s, hence
the 2 s timeout here: the simulator answers in milliseconds).

Prints a line per run, then `figure restart_loop.lost`, `.duplicated` and the time; exits 1 on any loss or
duplicate, or on a run that could not finish cleanly (exit status, spec errors, errors in the bot's log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import figure, footer, header, note
from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CAROL, FakeDiscord, InteractionRecord
from tests.harness import SIM_TOKEN, SubprocessBot, bot_env, eventually
from tests.pgserver import PgServer, start_server
from tests.resilience import jobs_in_db, results_for
from tests.test_walking_skeleton import button_id

MEMBERS = (ALICE, BOB, CAROL)
# How long the restarted bot gets to post everything before a job counts as lost.
SETTLE_SECONDS = 30.0


@dataclass
class Run:
    number: int
    max_jobs: int
    killed_after: float = 0.0
    at_kill: dict[str, int] = field(default_factory=dict)
    jobs: int = 0
    lost: list[int | str] = field(default_factory=list)
    unanswered: int = 0
    duplicated: dict[int, int] = field(default_factory=dict)
    resent: int = 0
    spec_errors: list[str] = field(default_factory=list)
    logged_errors: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    error: str | None = None

    def verdict(self) -> str:
        if self.error:
            return self.error
        lost = f"lost {len(self.lost)}" + (f" {self.lost}" if self.lost else "")
        duplicated = f"duplicated {sum(self.duplicated.values())}" + (f" {self.duplicated}" if self.duplicated else "")
        verdict = f"{lost}, {duplicated}, sent twice {self.resent}, unanswered {self.unanswered}, exit {self.exit_code}"
        if self.spec_errors:
            verdict += f"; {len(self.spec_errors)} spec errors: {self.spec_errors[0]}"
        if self.logged_errors:
            verdict += f"; the bot logged {len(self.logged_errors)} errors: {self.logged_errors[0]}"
        return verdict

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.duplicated or self.error or self.exit_code != 0 or self.spec_errors
                    or self.logged_errors)


def job_rows(db: Path, server: PgServer | None, url: str | None) -> Callable[[], dict[int, dict[str, Any]]]:
    """How to read the jobs table as the bot left it: the SQLite file, or the PostgreSQL database."""
    if server is None or url is None:
        return lambda: jobs_in_db(db)
    return lambda: {int(row["id"]): row for row in server.fetch(url, "SELECT * FROM jobs ORDER BY id")}


async def one_run(run: Run, args: argparse.Namespace, rng: random.Random, workdir: Path,
                  server: PgServer | None) -> None:
    started = time.monotonic()
    job_seconds = rng.uniform(0.4, 0.8)
    url = server.new_database() if server is not None else None
    async with FakeDiscord(validate=args.validate) as fake, \
            Simulator(token=SIM_TOKEN, job_seconds=job_seconds, progress_steps=2) as sim:
        db = workdir / f"run{run.number}.db"
        jobs_in_db = job_rows(db, server, url)
        store: dict[str, Any] = {"DATABASE_URL": url} if url else {}
        env = bot_env(fake, sim, db, USEAPI_MAX_JOBS=str(run.max_jobs), POLL_INTERVAL="0.3",
                      USEAPI_RETRY_SECONDS="0.3", PROGRESS_EDIT_SECONDS="0.1", LOG_LEVEL="INFO",
                      BACKEND_TIMEOUT_SECONDS="2", **store)
        bot = SubprocessBot(env, workdir / f"run{run.number}.log")
        try:
            await bot.start(fake)
            # A result from before the crash, whose U1 is clicked after it.
            await fake.slash("imagine", {"prompt": f"run {run.number}: the old result"}, user=ALICE)
            await eventually(lambda: results_for(fake, 1), timeout=15)

            commands: list[tuple[str, InteractionRecord]] = []
            for n in range(args.jobs):
                prompt = f"run {run.number}: job {n + 2}"
                commands.append((prompt, await fake.slash("imagine", {"prompt": prompt}, user=MEMBERS[n % 3])))
            # Kill at a random moment of the work: from right after the filing (submissions in flight)
            # through the first results coming back (callbacks being verified, results being posted).
            await asyncio.sleep(rng.uniform(0.0, 2.5 * job_seconds))
            states = [row["status"] for row in jobs_in_db().values()]
            run.at_kill = {state: states.count(state) for state in sorted(set(states))}
            run.killed_after = time.monotonic() - started
            await bot.kill()
            await eventually(lambda: not fake.gateway.active, timeout=10)

            # useapi finishes everything it was given while the bot is down.
            await eventually(lambda: not sim.executing(), timeout=15)
            await bot.start(fake)

            old = results_for(fake, 1)[0]
            click = await fake.click(int(old["id"]), button_id(old, "U1"), user=ALICE)
            await click.wait_response()

            # What the bot owes: a result for every job in its store (the old one, its U1 upscale, and each
            # command it took), and a job for every command it acknowledged. A command the crash cut off
            # before any answer was never taken: Discord told its user "The application did not respond".
            def answered() -> list[str]:
                return [prompt for prompt, record in commands if record.acknowledged]

            def settled() -> bool:
                rows = jobs_in_db()
                prompts = {row["prompt"] for row in rows.values()}
                return (all(prompt in prompts for prompt in answered())
                        and any(row["button"] == "U1" for row in rows.values())
                        and all(results_for(fake, job) for job in rows))

            with contextlib.suppress(AssertionError):  # whatever is still missing is counted as lost below
                await eventually(settled, timeout=SETTLE_SECONDS)
            await asyncio.sleep(0.5)  # a duplicate posted late would show up by now
            rows = jobs_in_db()
            run.jobs = len(rows)
            run.unanswered = len(commands) - len(answered())
            for job in rows:
                shown = len(results_for(fake, job))
                if shown == 0:
                    run.lost.append(job)
                elif shown > 1:
                    run.duplicated[job] = shown - 1
            stored = {row["prompt"] for row in rows.values()}
            run.lost += [f"ack'd: {prompt}" for prompt in answered() if prompt not in stored]
            # Not a loss or a duplicate in the channel, but worth seeing: a job sent to useapi twice.
            refs = [job.get("replyRef") for job in sim.jobs.values()]
            run.resent = len(refs) - len(set(refs))
            run.exit_code = await bot.terminate()
            run.spec_errors = list(fake.spec_errors)
            run.logged_errors = [line for line in bot.log_text().splitlines() if " ERROR " in line]
        except Exception as exc:  # a run that cannot finish is reported, and fails the benchmark
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.kill()
    if server is not None and url is not None:
        server.drop_database(url)
    run.seconds = time.monotonic() - started


async def main(args: argparse.Namespace) -> int:
    header("restart_loop", args)
    rng = random.Random(args.seed)
    runs: list[Run] = []
    server = start_server() if args.postgres else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="restart-loop-") as tmp:
        for number in range(1, args.runs + 1):
            run = Run(number=number, max_jobs=1 if number % 2 else 2)
            await one_run(run, args, rng, Path(tmp), server)
            runs.append(run)
            at_kill = ", ".join(f"{count} {state}" for state, count in run.at_kill.items())
            print(f"run {number:2}/{args.runs}: max_jobs={run.max_jobs} jobs={run.jobs} killed at "
                  f"{run.killed_after:.2f}s ({at_kill}) -> {run.verdict()}  [{run.seconds:.1f}s]", flush=True)
            if run.failed and args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                kept = args.keep_logs / f"run{number}.log"
                kept.write_bytes((Path(tmp) / f"run{number}.log").read_bytes())
                note(f"the bot's log of run {number} is kept at {kept}")
    elapsed = time.monotonic() - started
    if server is not None:
        server.stop()
    lost = sum(len(run.lost) for run in runs)
    duplicated = sum(sum(run.duplicated.values()) for run in runs)
    broken = sum(1 for run in runs if run.error or run.exit_code != 0 or run.spec_errors or run.logged_errors)
    jobs = sum(run.jobs for run in runs)
    figure("restart_loop.runs", len(runs))
    figure("restart_loop.jobs", jobs)
    figure("restart_loop.lost", lost, "jobs", target="0", met=lost == 0)
    figure("restart_loop.duplicated", duplicated, "posts", target="0", met=duplicated == 0)
    figure("restart_loop.sent_twice", sum(run.resent for run in runs), "jobs")
    figure("restart_loop.unanswered", sum(run.unanswered for run in runs), "commands")
    figure("restart_loop.unfinished_runs", broken, "runs", target="0", met=broken == 0)
    figure("restart_loop.seconds", elapsed, "s")
    footer()
    return 1 if lost or duplicated or broken else 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--runs", type=int, default=20, help="kill/restart cycles (default 20)")
    cli.add_argument("--small", action="store_true", help="one run of three jobs: the CI smoke test")
    cli.add_argument("--jobs", type=int, default=5, help="jobs filed in each run before the kill (default 5)")
    cli.add_argument("--seed", type=int, default=None, help="seed for the kill moments and job lengths")
    cli.add_argument("--validate", action="store_true",
                     help="have the fake Discord check every request against the OpenAPI spec (slower fake)")
    cli.add_argument("--keep-logs", type=Path, default=None, help="copy the bot's log of a failed run here")
    cli.add_argument("--postgres", action="store_true",
                     help="run the bot on PostgreSQL (a server of the benchmark's own) instead of SQLite")
    options = cli.parse_args()
    if options.small:
        options.runs, options.jobs = 1, 3
    sys.exit(asyncio.run(main(options)))
