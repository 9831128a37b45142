"""The domain records' own rules: what kind of file a result is, buttons from storage, which file a card shows."""

from __future__ import annotations

import pytest

from bot.jobs import Button, Media
from tests.unit.factories import job_record


@pytest.mark.parametrize(("media", "kind"), [
    (Media("https://cdn/x", content_type="image/png"), "image"),
    (Media("https://cdn/x", content_type="Video/MP4; codecs=avc1"), "video"),
    # The content type wins over the name ...
    (Media("https://cdn/x.mp4", content_type="image/webp"), "image"),
    # ... unless it says nothing useful, when the extension decides.
    (Media("https://cdn/x.mp4", content_type="application/octet-stream"), "video"),
    (Media("https://cdn/x", content_type="", filename="clip.WEBM"), "video"),
    # The file name, else the link's last path segment; a query string (Discord's ?ex= signature) is no extension.
    (Media("https://cdn.discordapp.com/a/grid_0.png?ex=65f&is=65e&hm=ab"), "image"),
    (Media("https://cdn/x.JPEG"), "image"),
    (Media("https://cdn/x.gif"), "image"),
    (Media("https://cdn/x.mov"), "video"),
    (Media("https://cdn/download", filename="result.jpg"), "image"),
    (Media("https://cdn/x.png", filename="result.mp4"), "video"),  # the name given beats the link
    (Media("https://cdn/x.bin"), "unknown"),
    (Media("https://cdn/noextension"), "unknown"),
    (Media("https://cdn.example/folder.png/file"), "unknown"),  # a dot in the path is not the file's extension
    (Media("https://cdn/x.tar.gz"), "unknown"),
])
def test_media_kind(media: Media, kind: str) -> None:
    assert media.kind == kind


def test_a_button_stored_as_a_bare_name_is_its_own_reference() -> None:
    assert Button.from_json("Vary (Strong)") == Button("Vary (Strong)", "Vary (Strong)")


def test_a_button_record_keeps_its_backend_reference() -> None:
    button = Button("U1", "MJ::JOB::upsample::1::abc")
    assert Button.from_json(button.to_json()) == button
    assert Button.from_json({"name": "🔄", "ref": 7}) == Button("🔄", "7")


def test_media_round_trip() -> None:
    media = Media("https://cdn/a.png", "image/png", 10, 1, 2, "a.png")
    assert Media.from_json(media.to_json()) == media
    assert Media.from_json({"url": "https://cdn/a.png"}) == Media("https://cdn/a.png")


IMAGE = Media("https://cdn/a.png", "image/png")
VIDEO = Media("https://cdn/a.mp4", "video/mp4")
OTHER = Media("https://cdn/a.bin")


@pytest.mark.parametrize(("media", "shown"), [
    ((IMAGE, VIDEO), VIDEO),  # an animation job's still comes first: the card shows the video
    ((OTHER, IMAGE, Media("https://cdn/b.png")), IMAGE),
    ((OTHER, Media("https://cdn/c.bin")), OTHER),
    ((), None),
])
def test_result_is_the_video_else_the_image_else_the_first_file(media: tuple[Media, ...],
                                                                 shown: Media | None) -> None:
    assert job_record(media=media).result == shown


def test_button_named() -> None:
    job = job_record(buttons=(Button("U1", "u-1"), Button("V1", "v-1")))
    assert job.button_named("V1") == Button("V1", "v-1")
    assert job.button_named("v1") is None
