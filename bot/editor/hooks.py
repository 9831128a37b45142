"""What the editor needs from the relay: the job's original image, and sending the region once submitted."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from bot.editor.links import EditorLink

__all__ = ["IMAGE_TYPES", "EditorHooks", "EditorUnavailable", "Original"]

# What the listener serves as the original: an image type a browser shows in an <img>, nothing it would run.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


class Original(NamedTuple):
    """The image a link's job made, as the backend gave it, and the prompt it was made with.

    `width` and `height` are the image's own pixels: the mask is sent at exactly this size.
    """

    data: bytes
    content_type: str  # one of IMAGE_TYPES
    width: int
    height: int
    prompt: str


class EditorUnavailable(Exception):
    """Raised by a hook that cannot serve a link; its message is the sentence for the member.

    From `original`: the job or its image is gone (a member deleted it, the backend forgot it); the page
    answers 410 with the sentence. From `submit`: sending failed (the backend refused, it is down); the POST
    answers 502 with the sentence. The link stays spent then, so the sentence should say to press
    Vary (Region) again.
    """

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


class EditorHooks(Protocol):
    """The relay's side of the editor, for links the routes have already checked (known, unexpired).

    `original` is called for every GET of the page and of its image and for every POST, so the relay keeps
    the bytes (or the backend's URL to fetch them) at hand rather than making each call slow.
    """

    async def original(self, link: EditorLink) -> Original:
        """The job's original image and prompt; EditorUnavailable when there is none."""

    async def submit(self, link: EditorLink, prompt: str, mask_png: bytes) -> str:
        """Press Vary (Region) on `link.job_id` for `link.member_id` and send `prompt` with `mask_png`.

        Called at most once per link, after the link was spent. `mask_png` is a one-channel PNG of the
        original's size, white = redraw. The mj-proxy backend takes it as
        `give_prompt(task_id, prompt, mask=mask_png)` after the press answered its modal (code 21).
        Returns the sentence the page shows, e.g. "Sent: the new job appears in the channel."; raises
        EditorUnavailable with a sentence when it could not be sent.
        """
