"""The submitted mask, decoded and made into what Midjourney expects: a PNG the original's size, white = redraw.

The page draws the mask at the original's size already. Another size is still taken when its shape is the
original's (the aspect ratios agree within 1%): a browser that caps a canvas's area (phones do) could only
draw it smaller, and scaling it with nearest neighbour keeps it black and white. Any other shape is refused:
stretching it would mark a region the member did not paint.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image

__all__ = ["MAX_MASK_BYTES", "MaskError", "decode_mask"]

# A mask is two colours; even 4096x4096 with anti-aliased edges is a few hundred KiB as a PNG.
MAX_MASK_BYTES = 4 * 1024 * 1024
# A small PNG can announce a huge size (a decompression bomb): nothing past this is decoded.
MAX_MASK_PIXELS = 8192 * 8192
PREFIX = "data:image/png;base64,"
THRESHOLD = 128  # anti-aliased edges at half coverage or more count as painted
_ASPECT_TOLERANCE = 0.01
TOO_MANY_PIXELS = "The mask's size is not one an image can have here."
_BINARY = [0] * THRESHOLD + [255] * (256 - THRESHOLD)


class MaskError(ValueError):
    """A mask that cannot be used; its message is the sentence for the member."""


def _png_bytes(data_url: str) -> bytes:
    if not data_url[: len(PREFIX)].lower() == PREFIX:
        raise MaskError("The mask must be a PNG image (a data:image/png;base64 URL).")
    encoded = data_url[len(PREFIX):]
    # Checked before decoding, so an oversized mask costs no memory beyond its text.
    if len(encoded) > (MAX_MASK_BYTES + 2) // 3 * 4:
        raise MaskError(f"The mask is larger than {MAX_MASK_BYTES // (1024 * 1024)} MiB.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MaskError("The mask is not valid base64.") from None


def _same_shape(size: tuple[int, int], width: int, height: int) -> bool:
    return abs(size[0] / size[1] - width / height) <= _ASPECT_TOLERANCE * (width / height)


def _opened(png: bytes, width: int, height: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the guard; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(png), formats=["PNG"])
    except Image.DecompressionBombError:
        raise MaskError(TOO_MANY_PIXELS) from None
    except (OSError, ValueError):
        raise MaskError("The mask is not a PNG image that can be read.") from None
    w, h = image.size
    if w < 1 or h < 1 or w * h > MAX_MASK_PIXELS:
        raise MaskError(TOO_MANY_PIXELS)
    if (w, h) != (width, height) and not _same_shape((w, h), width, height):
        raise MaskError(f"The mask is {w}x{h} but the image is {width}x{height}: their shapes differ.")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError):
        # Pillow raises SyntaxError for some broken chunks.
        raise MaskError("The mask is not a PNG image that can be read.") from None
    return image


def _one_channel(image: Image.Image) -> Image.Image:
    """Luminance, with transparent pixels taken as black (not redrawn): nothing painted there."""
    if image.mode in ("1", "L"):
        return image.convert("L")
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("L")


def decode_mask(data_url: str, width: int, height: int) -> bytes:
    """The PNG to send for a mask the page submitted, for an original of `width` x `height`.

    Raises MaskError with a sentence for the member: not a PNG data URL, over `MAX_MASK_BYTES`, another shape
    than the original's, or nothing marked. The result is one channel (mode L), only 0 and 255, the
    original's exact size.
    """
    if width < 1 or height < 1:
        raise ValueError("the original's size must be positive")
    image = _opened(_png_bytes(data_url), width, height)
    mask = _one_channel(image).point(_BINARY)
    if mask.size != (width, height):
        mask = mask.resize((width, height), Image.Resampling.NEAREST)
    if mask.histogram()[255] == 0:
        raise MaskError("Nothing is marked: paint or lasso the area to redraw, then send it.")
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()
