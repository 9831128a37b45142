"""A simulator of an mj-proxy (trueai-org/midjourney-proxy's /mj API) on a real aiohttp server; every task and
image it makes is simulated.

server.py is the HTTP face (Simulator: routes under /mj and the speed bases, middleware, test controls) and
commands.py its describe, blend and image-seed routes, with answers.py (the proxy's bodies and words, request
checks) and injections.py (answers queued by tests); engine.py keeps the tasks, the proxy's queue, their clock and
their callbacks (TaskEngine), shown on the Simulator by controls.py; tasks.py writes task bodies and buttons,
images.py the files; cli.py is `python -m bot.backends.mjproxy.simulator`. The contract facts it follows:
bot.backends.mjproxy.facts.
"""

from .cli import main
from .controls import SIMULATED_FAILURE
from .server import RecordedRequest, Simulator
from .tasks import job_hash

__all__ = ["SIMULATED_FAILURE", "RecordedRequest", "Simulator", "job_hash", "main"]
