"""The simulator as a process: python -m bot.backends.mjproxy.simulator [--help]."""

from bot.backends.mjproxy.simulator.cli import main

main()
