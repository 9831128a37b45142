"""A simulator of useapi.net's Midjourney v2 API on a real aiohttp server; every job and image it makes is simulated.

server.py is the HTTP face (Simulator: routes, middleware, test controls) and commands.py its routes for
describe, blend, seed_async and the settings commands, with answers.py (error bodies and request checks) and
injections.py (answers queued by tests); engine.py keeps the jobs, their clock and their callbacks (JobEngine),
shown on the Simulator by controls.py; results.py makes what a finished job carries, jobs.py writes job bodies,
images.py the PNGs; cli.py is `python -m bot.backends.useapi.simulator`. The contract facts it follows:
bot.backends.useapi.facts.
"""

from bot.backends.useapi.facts import GRID_BUTTONS, UPSCALE_BUTTONS

from .answers import DISCORD_429_BODY, MODERATED_BODY
from .cli import main
from .server import RecordedRequest, Simulator

__all__ = [
    "DISCORD_429_BODY",
    "GRID_BUTTONS",
    "MODERATED_BODY",
    "UPSCALE_BUTTONS",
    "RecordedRequest",
    "Simulator",
    "main",
]
