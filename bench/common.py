"""What every benchmark shares: the fakes on loopback, the real bot as its own process, and the statistics.

The fake Discord and the useapi simulator run inside the benchmark process; the bot runs as `python -m bot`
(tests/harness.py SubprocessBot), so it has a process and a core of its own and its figures are its own.
Every figure is printed as one line starting with `figure `, which the CI smoke test looks for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CAROL, OWNER, FakeDiscord
from tests.harness import ROOT, SIM_TOKEN, SubprocessBot, bot_env

__all__ = ["JSON", "ROOT", "Stack", "TimedFakeDiscord", "figure", "note", "stack"]

JSON = dict[str, Any]
BUILTIN_USERS = (ALICE, BOB, CAROL, OWNER)
JOB_NUMBER = re.compile(r"job #(\d+)")


# -- statistics -------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks, as numpy's default."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def figure(name: str, value: float | int | str, unit: str = "", *, target: str | None = None,
           met: bool | None = None) -> None:
    """Print one figure line: `figure <name> = <value> <unit>  [target <target>: met|MISSED]`."""
    shown = str(value)
    if isinstance(value, float):
        shown = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    line = f"figure {name} = {shown}{' ' + unit if unit else ''}"
    if target is not None:
        verdict = "" if met is None else (": met" if met else ": MISSED")
        line += f"  [target {target}{verdict}]"
    print(line, flush=True)


def note(text: str) -> None:
    """A line of context (not a figure)."""
    print(f"  {text}", flush=True)


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def header(name: str, args: argparse.Namespace) -> None:
    """Date, machine and load at the start of a benchmark, so every figure carries its conditions."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {name}  {now}  nproc={os.cpu_count()}  python={platform.python_version()}  "
          f"args={' '.join(sys.argv[1:]) or '(none)'}", flush=True)
    print(f"# load average at start: {loadavg()}", flush=True)


def footer() -> None:
    print(f"# load average at end: {loadavg()}", flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--small", action="store_true", help="tiny sizes, a few seconds: the CI smoke test")
    p.add_argument("--validate", action="store_true",
                   help="have the fake Discord check every request against the OpenAPI spec (slower fake)")
    return p


# -- the bot process --------------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM... of a process, in KiB, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            values[key] = int(parts[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def profile(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process | None:
    """Start py-spy sampling process `pid` for `seconds` into `out` (collapsed stacks); None if py-spy is absent.

    py-spy is a profiling aid only (pip install py-spy into the venv), not a dependency of the project.
    """
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        note("py-spy is not installed in the venv: no profile")
        return None
    return await asyncio.create_subprocess_exec(
        str(spy), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "250",
        "--format", "raw", "--output", str(out), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


def top_frames(collapsed: Path, count: int = 25) -> list[tuple[float, float, str]]:
    """From py-spy's collapsed stacks: (self %, total %, function) of the heaviest functions."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        weight = int(number)
        samples += weight
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  for frame in stack_text.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + weight
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + weight
    ranked = sorted(own, key=lambda f: own[f], reverse=True)[:count]
    return [(100 * own[f] / samples, 100 * total[f] / samples, f) for f in ranked]


def print_profile(collapsed: Path, title: str, count: int = 25) -> None:
    if not collapsed.exists():
        return
    print(f"# profile: {title} (py-spy, self% / total%, heaviest self time first)", flush=True)
    for own, total, frame in top_frames(collapsed, count):
        print(f"#   {own:5.1f}% {total:5.1f}%  {frame}", flush=True)


class TimedFakeDiscord(FakeDiscord):
    """The fake Discord, noting when each job's result card (a message with buttons) was stored."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result_at: dict[int, float] = {}  # local job number -> time.monotonic() of its result card
        self.pending_at: dict[int, float] = {}  # local job number -> first working message

    def _note(self, message: JSON) -> None:
        match = JOB_NUMBER.search(str(message.get("content") or ""))
        if match is None or message.get("flags", 0) & 64:  # ephemeral replies quote the job number too
            return
        number = int(match.group(1))
        if message.get("components") and message.get("attachments"):
            self.result_at.setdefault(number, time.monotonic())
        else:
            self.pending_at.setdefault(number, time.monotonic())

    async def _store_new(self, message: JSON) -> None:
        self._note(message)
        await super()._store_new(message)

    async def _edit(self, message: JSON, body: Mapping[str, Any], files: list[Any]) -> None:
        await super()._edit(message, body, files)
        self._note(message)

    def result_message(self, number: int) -> JSON | None:
        """The result card of local job `number`, if it is posted."""
        for message in self.messages.values():
            match = JOB_NUMBER.search(str(message.get("content") or ""))
            if match and int(match.group(1)) == number and message.get("components") and message.get("attachments"):
                return message
        return None

    async def wait_results(self, count: int, timeout: float) -> None:
        """Until at least `count` result cards are posted."""
        await self._wait(lambda: True if len(self.result_at) >= count else None, timeout,
                         f"{count} result cards (have {len(self.result_at)})")


def button_id(message: JSON, label: str) -> str:
    for row in message.get("components", []):
        for component in row["components"]:
            if component.get("label") == label:
                return str(component["custom_id"])
    raise AssertionError(f"no {label} button on message {message['id']}")


@dataclass
class Stack:
    """The fake Discord, the simulator, a fresh database folder, and (once started) the bot process."""

    fake: TimedFakeDiscord
    sim: Any  # the useapi simulator, or mj-proxy's (`backend="mjproxy"`)
    tmp: Path
    env: dict[str, str]
    bot: SubprocessBot | None = None
    users: list[int] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def db_path(self) -> Path:
        return Path(self.env["DATABASE_PATH"])

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def pid(self) -> int:
        assert self.bot is not None and self.bot.proc is not None
        return self.bot.proc.pid

    def add_users(self, count: int) -> list[int]:
        """`count` members of the default server: the fake's four, then new ones."""
        users = list(BUILTIN_USERS[:count])
        for number in range(len(users), count):
            users.append(self.fake.add_user(f"bench{number}").id)
        self.users = users
        return users

    async def start_bot(self, timeout: float = 60) -> float:
        """Start `python -m bot`; return the seconds from process start to the fake gateway's READY."""
        await self.stop_bot()
        self.bot = SubprocessBot(self.env, self.tmp / "bot.log")
        self.started_at = time.monotonic()
        await self.bot.start(self.fake, timeout=timeout)
        return time.monotonic() - self.started_at

    async def stop_bot(self) -> None:
        if self.bot is None or self.bot.proc is None or self.bot.proc.returncode is not None:
            return
        try:
            await self.bot.terminate(timeout=20)
        except TimeoutError:
            await self.bot.kill()
        # The fake keeps a closed session until it notices; wait so the next start waits for a fresh READY.
        deadline = time.monotonic() + 5
        while self.fake.gateway.active and time.monotonic() < deadline:  # noqa: ASYNC110 - the fake has no event
            await asyncio.sleep(0.02)

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the bot's database (WAL lets it read beside the running bot)."""
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)

    def statuses(self) -> dict[str, int]:
        with self.db() as conn:
            return dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())

    def check_log(self) -> None:
        """Say if the bot logged errors: a benchmark whose bot crashed proves nothing."""
        assert self.bot is not None
        bad = [line for line in self.bot.log_text().splitlines() if " ERROR " in line or "Traceback" in line]
        if bad:
            note(f"bot logged {len(bad)} error lines, first: {bad[0][:200]}")


@asynccontextmanager
async def stack(*, sim: Mapping[str, Any] | None = None, callbacks: bool = True, validate: bool = False,
                db_path: Path | None = None, backend: str = "useapi", **env: Any) -> AsyncIterator[Stack]:
    """Start the fakes and prepare the bot's environment (LOG_LEVEL=INFO as in production, no queue limit).

    The fake's OpenAPI validation is off by default: it costs the benchmark process (not the bot) a few
    milliseconds a request, which would otherwise show up in the latencies measured at the fake.
    """
    sim_options: dict[str, Any] = {"token": SIM_TOKEN, "job_seconds": 2.0, "progress_steps": 1}
    sim_options.update(sim or {})
    with tempfile.TemporaryDirectory(prefix="mj-bench-") as folder:
        tmp = Path(folder)
        fake = TimedFakeDiscord(validate=validate)
        await fake.start()
        async with contextlib.AsyncExitStack() as resources:
            resources.push_async_callback(fake.close)
            simulator: Any = await resources.enter_async_context(
                MjproxySimulator(**sim_options) if backend == "mjproxy" else Simulator(**sim_options))
            settings: dict[str, Any] = {"LOG_LEVEL": "INFO", "USER_MAX_QUEUED": 0, "POLL_INTERVAL": 15,
                                        "USEAPI_RETRY_SECONDS": 1}
            settings.update(env)
            environment = bot_env(fake, simulator, db_path or tmp / "relay.db", callbacks=callbacks, **settings)
            environment["PYTHONUNBUFFERED"] = "1"
            bench = Stack(fake=fake, sim=simulator, tmp=tmp, env=environment)
            try:
                yield bench
            except BaseException:
                if bench.bot is not None:
                    tail = "\n".join(bench.bot.log_text().splitlines()[-40:])
                    print(f"--- last lines of the bot's log ---\n{tail}", file=sys.stderr, flush=True)
                raise
            finally:
                await bench.stop_bot()
                if fake.spec_errors:
                    note(f"fake Discord spec errors: {len(fake.spec_errors)}, first: {fake.spec_errors[0]}")


# -- a bare aiohttp server: the baseline for the callback listener -------------------------------------

def bare_app() -> web.Application:
    """The least an aiohttp server can do for a callback: answer 200, reading nothing."""

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": 200})

    app = web.Application()
    app.router.add_post("/callbacks/useapi/{secret}/{ref}", ok)
    return app


def serve_bare(port: int) -> None:
    """Run the bare server until killed (started as a subprocess by bench/callbacks.py)."""
    web.run_app(bare_app(), host="127.0.0.1", port=port, access_log=None, print=None, handle_signals=True)
