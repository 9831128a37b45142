"""useapi.net Midjourney v2: the REST client, its typed errors and tolerant models."""

# The simulator (bot.backends.useapi.simulator) is not re-exported: importing the client must not pull in Pillow.

from .client import UseapiClient
from .errors import (
    BadRequest,
    ButtonConflict,
    JobNotFound,
    JobQueued,
    PaymentRequired,
    PendingModMessage,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UseapiConnectionError,
    UseapiError,
    UseapiTimeout,
    error_for,
)
from .models import AccountChannel, Attachment, Child, Job

__all__ = [
    "AccountChannel",
    "Attachment",
    "BadRequest",
    "ButtonConflict",
    "Child",
    "Job",
    "JobNotFound",
    "JobQueued",
    "PaymentRequired",
    "PendingModMessage",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UseapiClient",
    "UseapiConnectionError",
    "UseapiError",
    "UseapiTimeout",
    "error_for",
]
