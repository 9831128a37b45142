"""Decoding the page's mask into what Midjourney expects: PNG, the original's size, one channel, 0 and 255."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageDraw

from bot.editor.mask import MAX_MASK_BYTES, MaskError, decode_mask
from bot.editor.submission import BadSubmission, parse_submission


def data_url(image: Image.Image, fmt: str = "PNG", media: str = "image/png") -> str:
    out = io.BytesIO()
    image.save(out, fmt)
    return f"data:{media};base64,{base64.b64encode(out.getvalue()).decode()}"


def canvas_like(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """What the page's canvas gives: RGBA, black, a white rectangle with a grey (anti-aliased) rim."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), fill=(100, 100, 100, 255))  # under half: not painted
    draw.rectangle((x0, y0, x1, y1), fill=(255, 255, 255, 255))
    return image


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


def test_a_canvas_mask_becomes_one_channel_black_and_white_at_the_same_size() -> None:
    mask = decoded(decode_mask(data_url(canvas_like(300, 200, (10, 20, 59, 69))), 300, 200))
    assert mask.size == (300, 200)
    assert mask.mode == "L"
    histogram = mask.histogram()
    assert {value for value, count in enumerate(histogram) if count} == {0, 255}
    assert histogram[255] == 50 * 50
    assert mask.getpixel((10, 20)) == 255 and mask.getpixel((9, 20)) == 0


def test_the_threshold_is_half_coverage() -> None:
    image = Image.new("L", (4, 1))
    image.putdata([127, 128, 200, 0])
    mask = decoded(decode_mask(data_url(image), 4, 1))
    assert list(mask.tobytes()) == [0, 255, 255, 0]


def test_transparent_pixels_are_not_redrawn() -> None:
    image = Image.new("RGBA", (3, 1), (255, 255, 255, 0))
    image.putpixel((1, 0), (255, 255, 255, 255))
    assert list(decoded(decode_mask(data_url(image), 3, 1)).tobytes()) == [0, 255, 0]


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_any_png_mode_is_taken(mode: str) -> None:
    image = canvas_like(40, 30, (5, 5, 14, 14)).convert("L")
    # Without dithering, the grey rim stays under the threshold in a 1-bit image too.
    image = image.convert(mode, dither=Image.Dither.NONE) if mode == "1" else image.convert(mode)
    mask = decoded(decode_mask(data_url(image), 40, 30))
    assert mask.histogram()[255] == 100


def test_a_smaller_mask_of_the_same_shape_is_scaled_with_nearest_neighbour() -> None:
    small = canvas_like(100, 50, (0, 0, 49, 49))  # the left half
    mask = decoded(decode_mask(data_url(small), 400, 200))
    assert mask.size == (400, 200)
    assert set(mask.tobytes()) == {0, 255}  # no grey from interpolation
    assert mask.histogram()[255] == 200 * 200


def test_a_mask_of_another_shape_is_refused() -> None:
    with pytest.raises(MaskError, match=r"100x100 but the image is 400x200"):
        decode_mask(data_url(canvas_like(100, 100, (0, 0, 9, 9))), 400, 200)


def test_an_empty_mask_is_refused_with_a_sentence() -> None:
    with pytest.raises(MaskError, match="Nothing is marked"):
        decode_mask(data_url(Image.new("RGBA", (50, 50), (0, 0, 0, 255))), 50, 50)
    with pytest.raises(MaskError, match="Nothing is marked"):
        decode_mask(data_url(Image.new("RGBA", (50, 50), (255, 255, 255, 0))), 50, 50)


@pytest.mark.parametrize("url", [
    "",
    "not a data url",
    "data:image/jpeg;base64,AAAA",
    "data:text/html;base64,PGI+",
    "data:image/png,rawbytes",
    "data:image/png;base64,@@@@",
    "data:image/png;base64,AAAA",  # base64, but no PNG
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode(),
])
def test_what_is_not_a_png_data_url_is_refused(url: str) -> None:
    with pytest.raises(MaskError):
        decode_mask(url, 10, 10)


def test_a_jpeg_under_a_png_label_is_refused() -> None:
    with pytest.raises(MaskError, match="PNG"):
        decode_mask(data_url(Image.new("RGB", (10, 10)), fmt="JPEG"), 10, 10)


def test_a_truncated_png_is_refused() -> None:
    full = data_url(canvas_like(64, 64, (0, 0, 31, 31)))
    png = base64.b64decode(full.split(",", 1)[1])
    cut = "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode()
    with pytest.raises(MaskError, match="can be read"):
        decode_mask(cut, 64, 64)


def test_an_oversized_mask_is_refused_before_decoding() -> None:
    url = "data:image/png;base64," + "A" * (MAX_MASK_BYTES // 3 * 4 + 8)
    with pytest.raises(MaskError, match="larger than 4 MiB"):
        decode_mask(url, 10, 10)


def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded() -> None:
    # A 1-bit 20000x20000 PNG is small on the wire and 400 megapixels once decoded.
    bomb = Image.new("1", (20000, 20000))
    with pytest.raises(MaskError, match="size"):
        decode_mask(data_url(bomb), 20000, 20000)


def body(prompt: object, mask: object) -> bytes:
    return json.dumps({"prompt": prompt, "mask": mask}).encode()


MASK = data_url(canvas_like(20, 10, (0, 0, 4, 4)))


def test_a_submission_carries_the_prompt_in_one_line_and_the_mask() -> None:
    parsed = parse_submission(body("  a red\nfox  --ar 2:1 ", MASK), width=20, height=10, original_prompt="old")
    assert parsed.prompt == "a red fox --ar 2:1"
    assert decoded(parsed.mask_png).size == (20, 10)


@pytest.mark.parametrize("prompt", [None, "", "   \n "])
def test_an_emptied_prompt_is_the_original_one(prompt: str | None) -> None:
    assert parse_submission(body(prompt, MASK), width=20, height=10, original_prompt="old").prompt == "old"


@pytest.mark.parametrize(("raw", "sentence"), [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"text"', "JSON object"),
    (b'{"prompt": "x"}', "no mask"),
    (b'{"prompt": "x", "mask": 5}', "no mask"),
    (body(5, MASK), "must be text"),
    (body("a\u0000b", MASK), "cannot be sent"),
    (b'{"prompt": "\\ud800", "mask": "' + MASK.encode() + b'"}', "cannot be sent"),
    (body("x" * 4001, MASK), "at most 4000"),
    (body("x", "data:image/png;base64,AAAA"), "can be read"),
])
def test_a_bad_submission_says_why(raw: bytes, sentence: str) -> None:
    with pytest.raises(BadSubmission, match=sentence):
        parse_submission(raw, width=20, height=10, original_prompt="old")
