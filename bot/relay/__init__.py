"""The job lifecycle, from the click to the published result, as small parts behind the `Relay` facade."""

from bot.relay.facade import Relay, RelaySettings
from bot.relay.images import PATH_PREFIX as IMAGES_PATH
from bot.relay.images import served as served_image
from bot.relay.intake import DESCRIBE, ImagesGone
from bot.relay.ports import FinalCard, MessageGone, Publisher, PublishError, Shown

__all__ = ["DESCRIBE", "IMAGES_PATH", "FinalCard", "ImagesGone", "MessageGone", "PublishError", "Publisher", "Relay",
           "RelaySettings", "Shown", "served_image"]
