"""The Vary (Region) editor: a private, one-use page on the bot's listener to mark the region to redraw.

The relay gives a member `editor_url(PUBLIC_URL, link.token)` for a link made by `new_link` and kept in a
`LinkStore`; `add_routes` serves the page; the relay's `EditorHooks` gives the original and sends the mask.
"""

from bot.editor.hooks import IMAGE_TYPES, EditorHooks, EditorUnavailable, Original
from bot.editor.links import LIFETIME, EditorLink, LinkStore, MemoryLinks, Refusal, check, looks_like_token, new_link
from bot.editor.mask import MAX_MASK_BYTES, MaskError, decode_mask
from bot.editor.routes import MAX_BODY, NEEDS_PUBLIC_URL, PATH_PREFIX, add_routes, editor_url, masked_editor_path

__all__ = [
    "IMAGE_TYPES",
    "LIFETIME",
    "MAX_BODY",
    "MAX_MASK_BYTES",
    "NEEDS_PUBLIC_URL",
    "PATH_PREFIX",
    "EditorHooks",
    "EditorLink",
    "EditorUnavailable",
    "LinkStore",
    "MaskError",
    "MemoryLinks",
    "Original",
    "Refusal",
    "add_routes",
    "check",
    "decode_mask",
    "editor_url",
    "looks_like_token",
    "masked_editor_path",
    "new_link",
]
