"""python -m bot.backends.useapi.simulator: the simulator as a process of its own, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .server import Simulator

__all__ = ["main"]


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    await simulator.start(host, port)
    print(f"useapi simulator (all results are simulated) serving {simulator.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await simulator.close()


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGINT/SIGTERM: python -m bot.backends.useapi.simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.backends.useapi.simulator",
        description="A simulated useapi.net Midjourney v2 API (all results are simulated).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--job-seconds", type=float, default=2.0, help="job duration; negative = manual mode")
    parser.add_argument("--progress-steps", type=int, default=1)
    parser.add_argument("--post-delay", type=float, default=0.0)
    parser.add_argument("--token", default="sim-token", help="bearer token to require")
    parser.add_argument("--any-token", action="store_true", help="accept any bearer token")
    parser.add_argument("--image-bytes", type=int, default=None, help="make result PNGs about this large")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    simulator = Simulator(
        token=None if args.any_token else args.token,
        job_seconds=None if args.job_seconds < 0 else args.job_seconds,
        post_delay=args.post_delay,
        progress_steps=args.progress_steps,
        image_bytes=args.image_bytes,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator, args.host, args.port))
