"""python -m bot.backends.mjproxy.simulator: the simulator as a process of its own, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse

from bot.backends.mjproxy.facts import CODE_FAILURE, CODE_QUEUE_REJECTED, SPEED_MODES
from bot.backends.simkit import add_auth_arguments, add_clock_arguments, job_seconds_of, serve, token_of

from .server import Simulator

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGINT/SIGTERM: python -m bot.backends.mjproxy.simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.backends.mjproxy.simulator",
        description="A simulated mj-proxy (trueai-org/midjourney-proxy's /mj API); all results are simulated.",
    )
    add_clock_arguments(parser, port=8086, job_seconds=6.0, progress_steps=2,
                        duration_help="task duration; negative = manual mode")
    parser.add_argument("--max-running", type=int, default=3, help="tasks running at once; the rest queue")
    parser.add_argument("--queue-size", type=int, default=10, help="tasks that may wait in the queue")
    parser.add_argument("--queue-full-code", type=int, choices=(CODE_QUEUE_REJECTED, CODE_FAILURE),
                        default=CODE_QUEUE_REJECTED, help="23 (the protocol's) or 9 (what trueai sends)")
    add_auth_arguments(parser, require_help="token to require (mj-api-secret or Authorization)",
                        accept_any_help="accept any caller, with or without a token")
    parser.add_argument("--account-remix", action="store_true", help="Remix on: V, Vary, pan and 🔄 wait for a modal")
    parser.add_argument("--speeds", default=",".join(SPEED_MODES),
                        help="the speed bases to serve (/mj-<speed>/mj), comma-separated; empty for none")
    args = parser.parse_args(argv)
    simulator = Simulator(
        token=token_of(args),
        job_seconds=job_seconds_of(args),
        progress_steps=args.progress_steps,
        max_running=args.max_running,
        queue_size=args.queue_size,
        queue_full_code=args.queue_full_code,
        speeds=[speed for speed in args.speeds.split(",") if speed],
    )
    simulator.set_account_remix(args.account_remix)
    serve(simulator, args.host, args.port, name="mj-proxy")
