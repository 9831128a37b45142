"""The command line both simulators share (python -m bot.backends.<backend>.simulator): the options every
simulator takes, and serving until SIGINT or SIGTERM.

Each backend's own options, defaults and help words are given by its cli.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .server import HttpSimulator

__all__ = ["add_auth_arguments", "add_clock_arguments", "job_seconds_of", "serve", "token_of"]


def add_clock_arguments(parser: argparse.ArgumentParser, *, port: int, job_seconds: float, progress_steps: int,
                        duration_help: str) -> None:
    """--host, --port, --job-seconds (negative: manual mode) and --progress-steps, with these defaults."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--job-seconds", type=float, default=job_seconds, help=duration_help)
    parser.add_argument("--progress-steps", type=int, default=progress_steps)


def add_auth_arguments(parser: argparse.ArgumentParser, *, require_help: str, accept_any_help: str) -> None:
    """--token (sim-token unless given) and --any-token; apart from the clock's options so that each backend's
    --help keeps its own order."""
    parser.add_argument("--token", default="sim-token", help=require_help)
    parser.add_argument("--any-token", action="store_true", help=accept_any_help)


def token_of(args: argparse.Namespace) -> str | None:
    """The token to require; None (any caller) with --any-token."""
    return None if args.any_token else str(args.token)


def job_seconds_of(args: argparse.Namespace) -> float | None:
    """How long a job runs; None, manual mode, for a negative --job-seconds."""
    return None if args.job_seconds < 0 else float(args.job_seconds)


def serve(simulator: HttpSimulator, host: str, port: int, *, name: str) -> None:
    """Log at INFO and serve until SIGINT or SIGTERM; name is how the startup line calls the simulator."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator, host, port, name))


async def _serve(simulator: HttpSimulator, host: str, port: int, name: str) -> None:
    await simulator.start(host, port)
    print(f"{name} simulator (all results are simulated) serving {simulator.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await simulator.close()
