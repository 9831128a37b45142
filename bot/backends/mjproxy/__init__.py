"""mj-proxy (trueai-org/midjourney-proxy's HTTP protocol): the client, its typed errors and tolerant models.

facts.py holds the contract's facts, answers.py maps its answers onto the relay's vocabulary, backend.py is the
relay's `Backend` (MjproxyBackend, FACTS); simulator/ is a loopback proxy keeping the protocol, for tests and as
the bot's embedded default.
"""

# The simulator (bot.backends.mjproxy.simulator) is not re-exported: importing the client must not pull in Pillow.

from .client import AuthScheme, MjproxyClient
from .errors import (
    BadRequest,
    MjproxyConnectionError,
    MjproxyError,
    MjproxyTimeout,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from .models import MediaUrl, SubmitResult, Task, TaskButton

__all__ = [
    "AuthScheme",
    "BadRequest",
    "MediaUrl",
    "MjproxyClient",
    "MjproxyConnectionError",
    "MjproxyError",
    "MjproxyTimeout",
    "NotFound",
    "RateLimited",
    "ServerError",
    "SubmitResult",
    "Task",
    "TaskButton",
    "Unauthorized",
]
