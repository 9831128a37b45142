"""What the two simulators (bot.backends.useapi.simulator, bot.backends.mjproxy.simulator) share: the machinery
of a simulated backend, none of its contract.

answers.py reads a request's JSON body and writes JSON; background.py runs an engine's clocks and callback
deliveries and wakes whoever waits for a change; clock.py is the job clock those tasks run; engine.py and
controls.py are the bases of each backend's engine and of the controls tests use on it; server.py serves
a simulator on a port (HttpSimulator: start, close, base_url, the recorded requests, the outage switch);
injections.py queues the answers tests inject; images.py draws the made-up square every result image starts
as; cli.py is the command line's common options and serving until a signal.

Each backend's routes, bodies, codes, statuses and words stay in its own simulator; this package imports
neither backend, both import it.
"""

from .answers import BadBody, checked_body, json_unescaped, phrase, read_body, root_of
from .background import Background, Callback
from .cli import add_auth_arguments, add_clock_arguments, job_seconds_of, serve, token_of
from .clock import run_clock, stop_clock
from .controls import EngineControls
from .engine import SimEngine
from .images import mark, png_bytes, square
from .injections import InjectionQueue
from .server import HttpSimulator, RecordedRequest

__all__ = [
    "Background",
    "BadBody",
    "Callback",
    "EngineControls",
    "HttpSimulator",
    "InjectionQueue",
    "RecordedRequest",
    "SimEngine",
    "add_auth_arguments",
    "add_clock_arguments",
    "checked_body",
    "job_seconds_of",
    "json_unescaped",
    "mark",
    "phrase",
    "png_bytes",
    "read_body",
    "root_of",
    "run_clock",
    "serve",
    "square",
    "stop_clock",
    "token_of",
]
