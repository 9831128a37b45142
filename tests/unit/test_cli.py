"""The command line's rules: which command runs, and the console script's name."""

from __future__ import annotations

import importlib
import tomllib

import pytest

from bot.cli import main, parser
from tests.harness import ROOT


@pytest.mark.parametrize(("argv", "command"), [([], None), (["run"], "run"), (["check"], "check"),
                                               (["sync"], "sync")])
def test_each_command_is_recognised(argv: list[str], command: str | None) -> None:
    assert parser().parse_args(argv).command == command


def test_help_and_unknown_commands_exit_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "{run,check,sync}" in capsys.readouterr().out
    assert main(["check", "--help"]) == 0
    assert "PUBLIC_URL" in capsys.readouterr().out
    assert main(["bogus"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["check", "extra"]) == 2


def test_the_console_script_is_the_command_line() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["mj-relay"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
