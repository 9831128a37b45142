"""python -m bot.backends.mjproxy.simulator: the simulator as a process of its own, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from bot.backends.mjproxy.facts import CODE_FAILURE, CODE_QUEUE_REJECTED, SPEED_MODES

from .server import Simulator

__all__ = ["main"]


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    await simulator.start(host, port)
    print(f"mj-proxy simulator (all results are simulated) serving {simulator.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await simulator.close()


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGINT/SIGTERM: python -m bot.backends.mjproxy.simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.backends.mjproxy.simulator",
        description="A simulated mj-proxy (trueai-org/midjourney-proxy's /mj API); all results are simulated.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--job-seconds", type=float, default=6.0, help="task duration; negative = manual mode")
    parser.add_argument("--progress-steps", type=int, default=2)
    parser.add_argument("--max-running", type=int, default=3, help="tasks running at once; the rest queue")
    parser.add_argument("--queue-size", type=int, default=10, help="tasks that may wait in the queue")
    parser.add_argument("--queue-full-code", type=int, choices=(CODE_QUEUE_REJECTED, CODE_FAILURE),
                        default=CODE_QUEUE_REJECTED, help="23 (the protocol's) or 9 (what trueai sends)")
    parser.add_argument("--token", default="sim-token", help="token to require (mj-api-secret or Authorization)")
    parser.add_argument("--any-token", action="store_true", help="accept any caller, with or without a token")
    parser.add_argument("--account-remix", action="store_true", help="Remix on: V, Vary, pan and 🔄 wait for a modal")
    parser.add_argument("--speeds", default=",".join(SPEED_MODES),
                        help="the speed bases to serve (/mj-<speed>/mj), comma-separated; empty for none")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    simulator = Simulator(
        token=None if args.any_token else args.token,
        job_seconds=None if args.job_seconds < 0 else args.job_seconds,
        progress_steps=args.progress_steps,
        max_running=args.max_running,
        queue_size=args.queue_size,
        queue_full_code=args.queue_full_code,
        speeds=[speed for speed in args.speeds.split(",") if speed],
    )
    simulator.set_account_remix(args.account_remix)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator, args.host, args.port))
