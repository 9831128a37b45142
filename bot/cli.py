"""The command line: `python -m bot [run|check|sync]`, also installed as `mj-relay`; run is the default."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from bot import check
from bot.runner import EXIT_CONFIG, execute
from bot.serve import serve
from bot.sync import sync

DESCRIPTION = "A Discord bot that relays Midjourney for a team. Settings come from the environment and ./.env " \
              "(every one is documented in .env.example)."
WIDTH = 100
EXIT_STATUSES = """exit status:
  0  done (run: stopped by SIGTERM or Ctrl-C)
  1  failed: an unexpected error, or something could not be reached
  2  the configuration needs fixing: a setting, the Discord token, the database
  3  another instance of the bot still holds the database"""
COMMANDS = {
    "run": ("run the bot until SIGTERM or Ctrl-C (the default)",
            "Run the bot: connect to Discord, serve the slash commands and buttons, relay jobs to the backend, and "
            "listen on HOST:PORT for callbacks, /healthz, /readyz and /metrics. Stops cleanly on SIGTERM or Ctrl-C."),
    "check": ("check this install, one line per check, and exit",
              "Check this install and exit without running the bot: the settings, the database, the backend "
              "(or its embedded simulator), Discord (whether DISCORD_TOKEN logs in, and for each server the bot "
              "serves whether it is there with the permissions it needs; over REST, no gateway) and whether "
              "PUBLIC_URL reaches this machine. One line each; exit 0 when every check passed, 1 when one "
              "failed, 2 when the settings are wrong."),
    "sync": ("sync the slash commands with Discord now, and exit",
             "Log in, sync the slash commands with Discord whether or not they changed, record what was synced "
             "and exit. The bot syncs by itself at start when the commands changed; this forces it. Needs no "
             "gateway connection, so it may run beside a running bot."),
}


def _program() -> str:
    # `python -m bot` reports itself as __main__.py; the console script by its own name.
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "mj-relay"
    return "python -m bot" if name in ("__main__.py", "-c", "") else name


def parser() -> argparse.ArgumentParser:
    # Raw, so the exit statuses keep their lines; the descriptions are wrapped here instead.
    raw = argparse.RawDescriptionHelpFormatter
    top = argparse.ArgumentParser(prog=_program(), description=textwrap.fill(DESCRIPTION, WIDTH),
                                  epilog=EXIT_STATUSES, formatter_class=raw)
    commands = top.add_subparsers(dest="command", metavar="{run,check,sync}", title="commands")
    for name, (summary, description) in COMMANDS.items():
        # check's own description says what its statuses mean.
        commands.add_parser(name, help=summary, description=textwrap.fill(description, WIDTH),
                            epilog=None if name == "check" else EXIT_STATUSES, formatter_class=raw)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    if args.command == "check":
        return check.main()
    if args.command == "sync":
        # No instance lock: sync writes one row and starts no relay, so it may run beside the bot.
        return execute(sync, lock=False)
    return execute(serve, lock=True)
