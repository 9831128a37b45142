"""The editor's routes over a real socket: what a GET shows and never spends, what a POST sends exactly once."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from bot.editor import MAX_BODY, LinkStore, Refusal, editor_url, masked_editor_path
from bot.editor.routes import UNEXPECTED_SUBMIT
from tests.editor.rig import PROMPT, SENT, EditorServer

FORGED = "A" * 43  # the shape of a token, but no link's


@pytest.fixture
async def server() -> AsyncIterator[EditorServer]:
    editor = EditorServer(width=600, height=400)
    await editor.start()
    try:
        yield editor
    finally:
        await editor.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mask_url(width: int = 600, height: int = 400,
             box: tuple[int, int, int, int] | None = (100, 100, 199, 149)) -> str:
    """A mask as the page sends it: RGBA, black, `box` white (None: nothing marked)."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    if box is not None:
        ImageDraw.Draw(image).rectangle(box, fill=(255, 255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def post(http: aiohttp.ClientSession, url: str, body: Any = None, *, raw: bytes | None = None,
               content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": content_type}) as response:
        return response.status, await response.json()


async def unused(links: LinkStore, token: str) -> bool:
    link = await links.get(token)
    return link is not None and link.used_at is None


async def test_the_page_shows_the_original_and_the_prompt_and_spends_nothing(server: EditorServer,
                                                                             http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    for _ in range(3):  # the member, a link preview, the member again
        async with http.get(url) as response:
            assert response.status == 200
            page = await response.text()
            headers = response.headers
    async with http.head(url) as response:
        assert response.status == 200
    assert await unused(server.links, link.token)
    assert response.content_type == "text/html"
    # The prompt is prefilled, escaped; the image comes from the listener, relative to the page.
    assert "lighthouse on a cliff at dusk, \"oil painting\" &amp; &lt;warm light&gt; --ar 3:2</textarea>" in page
    assert f'src="{link.token}/image"' in page
    assert 'width="600" height="400"' in page
    # Nothing from anywhere else, and only the inlined script, by its nonce, may run.
    assert "http:" not in page and "https:" not in page and 'src="//' not in page and "@import" not in page
    assert page.count("<script") == 1 and page.count("<style") == 1
    nonce = re.search(r"script-src 'nonce-([\w-]+)'", headers["Content-Security-Policy"])
    assert nonce is not None
    assert f'<script nonce="{nonce[1]}">' in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"


async def test_each_answer_has_its_own_nonce(server: EditorServer, http: aiohttp.ClientSession) -> None:
    _, url = await server.link()
    policies = set()
    for _ in range(2):
        async with http.get(url) as response:
            policies.add(response.headers["Content-Security-Policy"])
    assert len(policies) == 2


async def test_the_image_is_served_through_the_listener(server: EditorServer, http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    async with http.get(url + "/image") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == server.hooks.original_image.data
    assert await unused(server.links, link.token)


async def test_an_image_of_a_type_a_browser_could_run_is_served_as_bytes(server: EditorServer,
                                                                        http: aiohttp.ClientSession) -> None:
    server.hooks.original_image = server.hooks.original_image._replace(content_type="text/html")
    _, url = await server.link()
    async with http.get(url + "/image") as response:
        assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("token", [FORGED, "short", "A" * 42 + "%2E", "A" * 200])
async def test_a_forged_link_is_refused_plainly_and_sends_nothing(server: EditorServer, http: aiohttp.ClientSession,
                                                                  token: str) -> None:
    await server.link()  # a real link exists; the forged one is not it
    url = editor_url(server.base_url, token)
    async with http.get(url) as response:
        assert response.status == 403
        page = await response.text()
        assert Refusal.INVALID.sentence in page
        assert "<script" not in page
    async with http.get(url + "/image") as response:
        assert response.status == 403
        assert await response.text() == Refusal.INVALID.sentence
    assert await post(http, url, {"prompt": "x", "mask": mask_url()}) == (
        403, {"ok": False, "message": Refusal.INVALID.sentence, "final": True})
    assert server.hooks.sent == []


async def test_an_expired_link_is_refused_and_sends_nothing(server: EditorServer, http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    server.clock.advance(timedelta(minutes=14, seconds=59))
    async with http.get(url) as response:
        assert response.status == 200
    server.clock.advance(timedelta(seconds=1))
    async with http.get(url) as response:
        assert response.status == 410
        assert Refusal.EXPIRED.sentence in await response.text()
    async with http.get(url + "/image") as response:
        assert response.status == 410
    status, answer = await post(http, url, {"prompt": "x", "mask": mask_url()})
    assert (status, answer["message"], answer["final"]) == (410, Refusal.EXPIRED.sentence, True)
    assert server.hooks.sent == []
    assert await unused(server.links, link.token)


async def test_a_submit_sends_once_and_a_replay_is_refused(server: EditorServer, http: aiohttp.ClientSession) -> None:
    link, url = await server.link(member_id=777)
    status, answer = await post(http, url, {"prompt": "  a lighthouse\nat night ", "mask": mask_url()})
    assert (status, answer) == (200, {"ok": True, "message": SENT, "final": True})
    [sent] = server.hooks.sent
    assert (sent.link.job_id, sent.link.member_id, sent.prompt) == (link.job_id, 777, "a lighthouse at night")
    assert sent.link.used_at == server.clock.now
    mask = Image.open(io.BytesIO(sent.mask_png))
    assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (600, 400))
    assert mask.histogram()[255] == 100 * 50 and mask.getpixel((100, 100)) == 255

    status, answer = await post(http, url, {"prompt": "again", "mask": mask_url()})
    assert (status, answer["message"], answer["final"]) == (410, Refusal.USED.sentence, True)
    async with http.get(url) as response:
        assert response.status == 410
        assert Refusal.USED.sentence in await response.text()
    # Used, then expired: still "used", which is what happened to it.
    server.clock.advance(timedelta(hours=1))
    async with http.get(url) as response:
        assert Refusal.USED.sentence in await response.text()
    assert len(server.hooks.sent) == 1


async def test_an_emptied_prompt_sends_the_original_one(server: EditorServer, http: aiohttp.ClientSession) -> None:
    _, url = await server.link()
    assert (await post(http, url, {"prompt": " ", "mask": mask_url()}))[0] == 200
    assert server.hooks.sent[0].prompt == PROMPT


async def test_two_racing_submits_send_exactly_once(server: EditorServer, http: aiohttp.ClientSession) -> None:
    _, url = await server.link()
    # Both requests wait for each other after their checks, so both find the link unspent.
    server.hooks.barrier = asyncio.Barrier(2)
    answers = await asyncio.gather(post(http, url, {"prompt": "one", "mask": mask_url()}),
                                   post(http, url, {"prompt": "two", "mask": mask_url()}))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 410]
    loser = next(answer for status, answer in answers if status == 410)
    assert loser["message"] == Refusal.USED.sentence
    assert len(server.hooks.sent) == 1


async def test_the_link_is_for_its_member_whoever_holds_it(server: EditorServer, http: aiohttp.ClientSession) -> None:
    # The page needs no login: holding the unguessable link, given only in the member's private reply, is the
    # proof. A request carries no member of its own, so the job is the link's member's, whoever sends it.
    _, url = await server.link(member_id=1001)
    async with http.post(url, json={"prompt": "x", "mask": mask_url()},
                         headers={"Cookie": "member=2002", "X-Member": "2002"}) as response:
        assert response.status == 200
    assert server.hooks.sent[0].link.member_id == 1001


@pytest.mark.parametrize(("raw", "status", "sentence"), [
    (b"not json", 400, "not JSON"),
    (b"[]", 400, "JSON object"),
    (b'{"prompt": "x"}', 400, "no mask"),
    (json.dumps({"prompt": "x", "mask": "data:image/png;base64,AAAA"}).encode(), 400, "can be read"),
    (json.dumps({"prompt": "x", "mask": mask_url(box=None)}).encode(), 400, "Nothing is marked"),
    (json.dumps({"prompt": "x", "mask": mask_url(300, 300)}).encode(), 400, "shapes differ"),
    (json.dumps({"prompt": "x" * 4001, "mask": mask_url()}).encode(), 400, "at most 4000"),
])
async def test_a_bad_body_is_refused_and_leaves_the_link_usable(server: EditorServer, http: aiohttp.ClientSession,
                                                                raw: bytes, status: int, sentence: str) -> None:
    link, url = await server.link()
    got, answer = await post(http, url, raw=raw)
    assert got == status
    assert sentence in answer["message"]
    assert answer["ok"] is False and answer["final"] is False
    assert await unused(server.links, link.token)
    assert (await post(http, url, {"prompt": "x", "mask": mask_url()}))[0] == 200


async def test_a_body_that_is_not_json_by_its_type_is_refused(server: EditorServer,
                                                              http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    body = json.dumps({"prompt": "x", "mask": mask_url()}).encode()
    assert (await post(http, url, raw=body, content_type="text/plain"))[0] == 415
    assert (await post(http, url, raw=body, content_type="application/x-www-form-urlencoded"))[0] == 415
    assert await unused(server.links, link.token)


async def test_an_oversize_body_is_refused_whether_announced_or_chunked(server: EditorServer,
                                                                        http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    huge = b'{"prompt": "x", "mask": "data:image/png;base64,' + b"A" * MAX_BODY + b'"}'
    status, answer = await post(http, url, raw=huge)
    assert status == 413 and "larger than" in answer["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 256 * 1024):
            yield huge[start:start + 256 * 1024]

    async with http.post(url, data=chunks(), headers={"Content-Type": "application/json"}) as response:
        assert response.status == 413
    assert await unused(server.links, link.token)
    assert server.hooks.sent == []


async def test_a_large_mask_past_the_apps_default_body_limit_is_taken(http: aiohttp.ClientSession) -> None:
    # Noise does not compress: a 1000x700 RGB mask is a 2 MiB PNG, over aiohttp's default 1 MiB limit.
    big = EditorServer(width=1000, height=700)
    await big.start()
    try:
        _, url = await big.link()
        noise = Image.frombytes("RGB", (1000, 700), os.urandom(1000 * 700 * 3))
        out = io.BytesIO()
        noise.save(out, "PNG")
        assert out.tell() > 2 * 1024 * 1024
        mask = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
        status, _ = await post(http, url, {"mask": mask})
        assert status == 200
        assert Image.open(io.BytesIO(big.hooks.sent[0].mask_png)).size == (1000, 700)
    finally:
        await big.close()


async def test_a_job_that_is_gone_says_so(server: EditorServer, http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    server.hooks.gone = "This image was deleted, so it cannot be varied."
    async with http.get(url) as response:
        assert response.status == 410
        assert "This image was deleted" in await response.text()
    async with http.get(url + "/image") as response:
        assert response.status == 410
    assert (await post(http, url, {"mask": mask_url()}))[0] == 410
    assert await unused(server.links, link.token)


async def test_a_send_the_relay_could_not_make_says_why_and_the_link_stays_spent(
        server: EditorServer, http: aiohttp.ClientSession) -> None:
    link, url = await server.link()
    server.hooks.refuse = "Midjourney is not answering; press Vary (Region) again in a few minutes."
    status, answer = await post(http, url, {"mask": mask_url()})
    assert (status, answer["message"], answer["final"]) == (502, server.hooks.refuse, True)
    assert not await unused(server.links, link.token)


async def test_a_relay_that_falls_over_gets_a_careful_sentence(server: EditorServer, http: aiohttp.ClientSession,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    _, url = await server.link()
    server.hooks.crash = True
    with caplog.at_level(logging.ERROR, logger="bot.editor.routes"):
        status, answer = await post(http, url, {"mask": mask_url()})
    assert (status, answer["message"]) == (500, UNEXPECTED_SUBMIT)
    assert "relay fell over" in caplog.text


def test_an_editor_path_is_logged_without_its_token() -> None:
    assert masked_editor_path("/editor/" + FORGED) == "/editor/***"
    assert masked_editor_path("/editor/" + FORGED + "/image") == "/editor/***/image"
    assert masked_editor_path("/callbacks/x/y") == "/callbacks/x/y"
    assert editor_url("https://relay.example/bot/", FORGED) == "https://relay.example/bot/editor/" + FORGED
