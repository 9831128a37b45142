"""The job lifecycle, from the click to the published result, as small parts behind the `Relay` facade."""

from bot.relay.facade import Relay, RelaySettings
from bot.relay.ports import FinalCard, MessageGone, Publisher, PublishError, Shown

__all__ = ["FinalCard", "MessageGone", "PublishError", "Publisher", "Relay", "RelaySettings", "Shown"]
