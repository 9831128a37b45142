"""Acknowledgement latency while four 4x-upscale-sized results are being fitted into the upload limit.

    .venv/bin/python bench/fit_load.py [--bot-checkout DIR] [--rounds 3] [--small]

Four jobs finish at once, each with a photo-like 4096x4096 PNG of about 30 MB (the size of Midjourney's 4x
upscale), which the bot must download and re-encode to fit the channel's 10 MiB; meanwhile members keep
sending /quota (cheap, no backend call), and the fake Discord times each acknowledgement. The bot runs as
`python -m bot` from `--bot-checkout` (default: this one), with that checkout's own venv, so an older release
(87c342d, which re-encoded on the event loop) is measured against the same fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Stack,
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
from bot.backends.useapi.simulator import results as simulator_results
from bot.backends.useapi.simulator.jobs import attachment as ATTACHMENT
from tests.fakediscord import InteractionRecord
from tests.harness import SubprocessBot
from tests.ports import free_port

SIDE = 4096
JOBS = 4
PROBE_EVERY = 0.025


def photo(side: int) -> bytes:
    """A photo-like PNG: smooth gradients under fine noise, so it compresses as photographs do (about 30 MB)."""
    grad = Image.linear_gradient("L").resize((side, side))
    channels = [ImageChops.add(base, Image.effect_noise((side, side), 18), scale=1.6, offset=-30)
                for base in (grad, grad.rotate(90), grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    picture = Image.merge("RGB", channels).filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=6)
    return out.getvalue()


class CheckoutBot(SubprocessBot):
    """`python -m bot` from another checkout, with its own venv."""

    def __init__(self, env: dict[str, str], log_path: Path, checkout: Path) -> None:
        super().__init__(env, log_path)
        self.checkout = checkout

    async def start(self, fake: object, timeout: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "USEAPI_", "BACKEND_"))}
        env.update(self.env)
        if os.environ.get("FIT_LOAD_DEBUG"):
            env["PYTHONASYNCIODEBUG"] = "1"  # asyncio then logs every callback that held the loop over 100 ms
        python = self.checkout / ".venv" / "bin" / "python"
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(python), "-m", "bot", cwd=str(self.checkout), env=env, stdout=log, stderr=log,
                stdin=asyncio.subprocess.DEVNULL)
        await fake.wait_ready(timeout=timeout)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def file_server(folder: Path) -> AsyncIterator[str]:
    """The photo served by a process of its own, as a CDN would: the bench process does not stream 120 MB
    while it also times the acknowledgements."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        await server.wait()


async def one_round(number: int, png: bytes, checkout: Path, small: bool, workers: int,
                    profile_to: Path | None) -> list[float]:
    side = 512 if small else SIDE
    folder = Path(tempfile.mkdtemp(prefix="mj-photo-"))
    (folder / "attachments").mkdir()
    (folder / "attachments" / "photo.png").write_bytes(png)
    async with file_server(folder) as root, stack(sim={"job_seconds": None}, USEAPI_MAX_JOBS=JOBS,
                                                  PROGRESS_EDIT_SECONDS=2, IMAGE_WORKERS=workers) as bench:
        # The simulator's results become the photo (the simulator is only the bench's stand-in for useapi).
        # The names results.py looks up when it makes a result (vars(): they are its imports, not its API).
        made = vars(simulator_results)
        made["render_png"] = lambda jobid, _side, grid, image_bytes: (b"", side)
        made["attachment"] = (lambda _root, _name, _size, _side, attachment_id, **_:
                              ATTACHMENT(root, "photo.png", len(png), side, attachment_id))
        users = bench.add_users(JOBS)
        bench.bot = CheckoutBot(bench.env, bench.tmp / "bot.log", checkout)
        await bench.bot.start(bench.fake)
        for index, user in enumerate(users):
            await bench.fake.slash("imagine", {"prompt": f"a photograph {index}"}, user=user)
        await _running(bench)
        probes: list[InteractionRecord] = []
        done = asyncio.Event()

        async def probe() -> None:
            turn = 0
            while not done.is_set():
                probes.append(await bench.fake.slash("quota", {}, user=users[turn % len(users)]))
                turn += 1
                await asyncio.sleep(PROBE_EVERY)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.5)  # a baseline before the results land
        spy = None
        if profile_to is not None and number == 1:
            spy = await profile(bench.pid, 4, profile_to / "fit.txt")
            await asyncio.sleep(0.3)  # py-spy attaches
        started = time.monotonic()
        await asyncio.gather(*(bench.sim.complete(jobid) for jobid in list(bench.sim.executing())))
        await bench.fake.wait_results(JOBS, timeout=180)
        posted = time.monotonic() - started
        await asyncio.sleep(0.5)
        done.set()
        await prober
        for record in probes:
            await record.wait_response(timeout=30)
        latencies = [r.ack_latency * 1000 for r in probes if r.ack_latency is not None]
        note(f"round {number}: {len(probes)} acknowledgements while {JOBS} results of {len(png) / 1e6:.1f} MB were "
             f"fitted; all posted {posted:.1f} s after completing; p99 {percentile(latencies, 99):.1f} ms, "
             f"max {max(latencies):.1f} ms")
        if spy is not None and profile_to is not None:
            await spy.wait()
            print_profile(profile_to / "fit.txt", "bot process while the results are fitted")
        if os.environ.get("FIT_LOAD_DEBUG"):
            slow = [line for line in bench.bot.log_text().splitlines() if "Executing" in line and "took" in line]
            for line in slow[:15]:
                note(line[-200:])
        bench.check_log()
    shutil.rmtree(folder)
    return latencies


async def _running(bench: Stack) -> None:
    sim = bench.sim
    deadline = time.monotonic() + 60
    while len(sim.executing()) < JOBS:
        if time.monotonic() > deadline:
            raise TimeoutError("the jobs never started")
        await asyncio.sleep(0.05)


async def main() -> int:
    p = parser(__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--bot-checkout", type=Path, default=ROOT)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--image-workers", type=int, default=2, help="IMAGE_WORKERS for the bot (default 2)")
    p.add_argument("--profile", type=Path, help="folder for a py-spy profile of the bot during round 1")
    args = p.parse_args()
    if args.profile is not None:
        await asyncio.to_thread(args.profile.mkdir, parents=True, exist_ok=True)
    header("fit_load", args)
    png = photo(512 if args.small else SIDE)
    note(f"result image: {len(png) / 1e6:.1f} MB PNG; bot from {args.bot_checkout}")
    rounds = 1 if args.small else args.rounds
    latencies: list[float] = []
    for number in range(1, rounds + 1):
        latencies += await one_round(number, png, args.bot_checkout.resolve(), args.small, args.image_workers,
                                     args.profile)
    figure("fit.ack_p99", round(percentile(latencies, 99), 1), "ms", target="< 100 ms",
           met=percentile(latencies, 99) < 100)
    figure("fit.ack_median", round(median(latencies), 1), "ms")
    figure("fit.ack_max", round(max(latencies), 1), "ms")
    figure("fit.ack_over_3s", sum(1 for value in latencies if value > 3000), "of " + str(len(latencies)))
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
