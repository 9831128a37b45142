"""The command line: `python -m bot [run|check|sync|migrate-db|backup]`, also installed as `mj-relay`; run is the
default."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from bot import check
from bot.backup import backup
from bot.migrate_db import migrate_db
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
    "migrate-db": ("copy the SQLite database into the PostgreSQL one at DATABASE_URL, and exit",
                   "Copy the SQLite database at DATABASE_PATH (or --from PATH) into the PostgreSQL database at "
                   "DATABASE_URL, in one transaction: every job with its number and owner, the mapping behind every "
                   "button, the servers' settings and the callback secret, under the same database identity, so "
                   "old buttons and callbacks keep working. Stop the bot first: one still running on the SQLite "
                   "file is refused (status 3), since the jobs it wrote after the copy would be left behind. A "
                   "PostgreSQL database that already holds jobs, settings or state is refused unless --force, "
                   "which replaces all of it. Then start the bot with DATABASE_URL set."),
    "backup": ("write a consistent copy of the SQLite database to PATH, and exit",
               "Write a consistent copy of the SQLite database at DATABASE_PATH to PATH (replacing a file already "
               "there), readable by its owner only, and print its size and how many jobs it holds. Safe while the "
               "bot runs. For a PostgreSQL database (DATABASE_URL) use pg_dump or the platform's backups."),
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
    commands = top.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}", title="commands")
    made = {}
    for name, (summary, description) in COMMANDS.items():
        # check's own description says what its statuses mean.
        made[name] = commands.add_parser(name, help=summary, description=textwrap.fill(description, WIDTH),
                                         epilog=None if name == "check" else EXIT_STATUSES, formatter_class=raw)
    made["migrate-db"].add_argument("--force", action="store_true",
                                    help="replace whatever the PostgreSQL database already holds")
    made["migrate-db"].add_argument("--from", dest="source", metavar="PATH",
                                    help="the SQLite database to copy (default: DATABASE_PATH)")
    made["backup"].add_argument("path", metavar="PATH", help="the file to write the backup to")
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
    if args.command == "migrate-db":
        # It locks the file it copies itself (--from may name another than DATABASE_PATH), refusing at once.
        return execute(lambda settings, masker: migrate_db(settings, masker, source=args.source, force=args.force),
                       lock=False)
    if args.command == "backup":
        # No lock: SQLite's online backup reads a live database as of one moment.
        return execute(lambda settings, masker: backup(settings, masker, destination=args.path), lock=False)
    return execute(serve, lock=True)
