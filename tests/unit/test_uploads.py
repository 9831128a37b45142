"""Which images members may give: the types Midjourney reads, by their bytes, at most 10 MiB."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.uploads import MAX_UPLOAD_BYTES, Upload, checked, refusal_before_reading, sniffed_type


def encoded(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, format=kind)
    return out.getvalue()


@pytest.mark.parametrize(("kind", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                                    ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_each_type_midjourney_reads_is_known_by_its_bytes(kind: str, content_type: str) -> None:
    data = encoded(kind)
    assert sniffed_type(data) == content_type
    assert checked("whatever.bin", data) == Upload(data, content_type, "whatever.bin")


@pytest.mark.parametrize("kind", ["BMP", "TIFF", "ICO"])
def test_other_images_are_refused_with_the_types_named(kind: str) -> None:
    refused = checked("x.img", encoded(kind))
    assert isinstance(refused, str) and "PNG, JPEG, WebP or GIF" in refused and "`x.img`" in refused


def test_an_empty_file_says_it_is_empty() -> None:
    assert checked("nothing.png", b"") == "`nothing.png` is empty. Nothing was sent."


def test_size_is_checked_before_reading_and_after() -> None:
    assert refusal_before_reading("a.png", "image/png", MAX_UPLOAD_BYTES) is None
    too_big = refusal_before_reading("a.png", "image/png", MAX_UPLOAD_BYTES + 1)
    assert too_big is not None and "at most 10.0 MiB" in too_big and "10.0 MiB;" in too_big
    assert isinstance(checked("a.png", encoded("PNG") + b"\0" * MAX_UPLOAD_BYTES), str)


@pytest.mark.parametrize("declared", ["text/plain", "application/pdf", "video/mp4; codecs=avc1"])
def test_a_declared_non_image_is_refused_before_reading(declared: str) -> None:
    refused = refusal_before_reading("doc", declared, 10)
    assert refused is not None and "is not an image" in refused


@pytest.mark.parametrize("declared", [None, "image/png", "IMAGE/JPEG", "image/webp; q=1"])
def test_an_image_or_unknown_type_is_read_and_judged_by_its_bytes(declared: str | None) -> None:
    assert refusal_before_reading("pic", declared, 10) is None


@given(st.binary(max_size=64))
def test_no_short_blob_is_taken_for_an_image_unless_it_starts_like_one(data: bytes) -> None:
    found = sniffed_type(data)
    assert found is None or data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"GIF8"))
