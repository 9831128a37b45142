"""The simulator as a process: python -m bot.backends.useapi.simulator [--help]."""

from bot.backends.useapi.simulator.cli import main

main()
