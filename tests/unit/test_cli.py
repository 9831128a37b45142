"""The command line's rules: which command runs, and the console script's name."""

from __future__ import annotations

import importlib
import tomllib

import pytest

from bot.cli import main, parser
from tests.harness import ROOT


@pytest.mark.parametrize(("argv", "command"), [([], None), (["run"], "run"), (["check"], "check"),
                                               (["sync"], "sync"), (["migrate-db"], "migrate-db"),
                                               (["backup", "b.db"], "backup")])
def test_each_command_is_recognised(argv: list[str], command: str | None) -> None:
    assert parser().parse_args(argv).command == command


def test_migrate_db_and_backup_take_their_arguments() -> None:
    plain = parser().parse_args(["migrate-db"])
    assert (plain.force, plain.source) == (False, None)
    given = parser().parse_args(["migrate-db", "--force", "--from", "old/relay.db"])
    assert (given.force, given.source) == (True, "old/relay.db")
    assert parser().parse_args(["backup", "/backups/relay.db"]).path == "/backups/relay.db"


def test_help_and_unknown_commands_exit_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "{run,check,sync,migrate-db,backup}" in capsys.readouterr().out
    assert main(["check", "--help"]) == 0
    assert "PUBLIC_URL" in capsys.readouterr().out
    assert main(["bogus"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["check", "extra"]) == 2
    assert main(["backup"]) == 2, "PATH is required"
    assert "the following arguments are required: PATH" in capsys.readouterr().err


def test_the_console_script_is_the_command_line() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["mj-relay"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
