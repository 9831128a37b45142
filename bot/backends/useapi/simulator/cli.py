"""python -m bot.backends.useapi.simulator: the simulator as a process of its own, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse

from bot.backends.simkit import add_auth_arguments, add_clock_arguments, job_seconds_of, serve, token_of

from .server import Simulator

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGINT/SIGTERM: python -m bot.backends.useapi.simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.backends.useapi.simulator",
        description="A simulated useapi.net Midjourney v2 API (all results are simulated).",
    )
    add_clock_arguments(parser, port=8090, job_seconds=2.0, progress_steps=1,
                        duration_help="job duration; negative = manual mode")
    parser.add_argument("--post-delay", type=float, default=0.0)
    add_auth_arguments(parser, require_help="bearer token to require", accept_any_help="accept any bearer token")
    parser.add_argument("--image-bytes", type=int, default=None, help="make result PNGs about this large")
    args = parser.parse_args(argv)
    simulator = Simulator(
        token=token_of(args),
        job_seconds=job_seconds_of(args),
        post_delay=args.post_delay,
        progress_steps=args.progress_steps,
        image_bytes=args.image_bytes,
    )
    serve(simulator, args.host, args.port, name="useapi")
