"""What the two simulators (bot.backends.useapi.simulator, bot.backends.mjproxy.simulator) share: the machinery
of a simulated backend, none of its contract.

answers.py reads a request's JSON body and writes JSON. Each backend's routes, bodies, codes, statuses and
words stay in its own simulator; this package imports neither backend, both import it.
"""

from .answers import BadBody, json_unescaped, phrase, read_body, root_of

__all__ = ["BadBody", "json_unescaped", "phrase", "read_body", "root_of"]
