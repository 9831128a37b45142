"""Vary (Region) end to end: the real bot on the mj-proxy simulator, the click's private link, the editor opened
in Debian's Chromium (through Playwright), a region painted with the mouse or a finger, and the mask the proxy
receives in its modal step compared with the painted region; the link's refusals after that."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageChops, ImageDraw
from playwright.async_api import Browser, Page

from bot.editor import NEEDS_PUBLIC_URL, Refusal
from tests.backend_sims import SIMS, BotSim, job_soon
from tests.editor.test_browser import headless_chromium
from tests.fakediscord import ALICE, FakeDiscord
from tests.harness import InProcessBot, eventually
from tests.test_buttons import button_of, card, names, private

JSON = dict[str, Any]
LINK = re.compile(r"https?://\S+/editor/[A-Za-z0-9_-]{43}")
Point = tuple[float, float]
BRUSH_PERCENT = 8


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as launched:
        yield launched


@pytest.fixture
async def proxy() -> AsyncIterator[BotSim]:
    async with SIMS["mjproxy"]() as sim:
        yield sim


async def upscale_card(fake: FakeDiscord, sim: BotSim) -> JSON:
    """A grid, then its U1, finished: the upscale's card, whose buttons include Vary (Region)."""
    await fake.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ALICE)
    await sim.complete(await job_soon(sim, 1))
    grid = await card(fake, 1)
    await private(await fake.click(int(grid["id"]), str(button_of(grid, "U1")["custom_id"]), user=ALICE))
    await sim.complete(await job_soon(sim, 2))
    upscale = await card(fake, 2)
    assert "Vary (Region)" in names(upscale)
    return upscale


async def editor_link(fake: FakeDiscord, upscale: JSON) -> str:
    answer = await private(await fake.click(int(upscale["id"]), str(button_of(upscale, "Vary (Region)")["custom_id"]),
                                            user=ALICE))
    found = LINK.search(answer)
    assert found is not None, answer
    assert "for you only" in answer and "15 minutes" in answer
    return found[0]


def modal_masks(sim: BotSim) -> list[bytes]:
    calls = sim.sim.calls("submit/modal")  # type: ignore[attr-defined]
    return [base64.b64decode(str((call.body or {}).get("maskBase64", "")).partition(",")[2]) for call in calls]


async def to_screen(page: Page, size: tuple[int, int], points: Sequence[Point]) -> list[Point]:
    box = await page.locator("#paint").bounding_box()
    assert box is not None
    width, height = size
    along: list[Point] = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        along += [(x0 + (x1 - x0) * i / 12, y0 + (y1 - y0) * i / 12) for i in range(1, 13)]
    return [(box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height) for x, y in along]


async def paint(page: Page, size: tuple[int, int], points: Sequence[Point], touch: bool) -> None:
    on_screen = await to_screen(page, size, points)
    if not touch:
        await page.mouse.move(*on_screen[0])
        await page.mouse.down()
        for x, y in on_screen[1:]:
            await page.mouse.move(x, y)
        await page.mouse.up()
        return
    cdp = await page.context.new_cdp_session(page)
    first = on_screen[0]
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": first[0], "y": first[1]}]})
    for x, y in on_screen[1:]:
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    await asyncio.sleep(0.2)  # a finger rests before it lifts; lifted while moving, the browser sees a fling
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def expected_stroke(size: tuple[int, int], points: Sequence[Point], diameter: float) -> Image.Image:
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    draw.line(list(points), fill=255, width=round(diameter), joint="curve")
    for x, y in points:
        draw.ellipse((x - diameter / 2, y - diameter / 2, x + diameter / 2, y + diameter / 2), fill=255)
    return image


@pytest.mark.parametrize("touch", [False, True], ids=["mouse", "touch"])
async def test_the_painted_region_reaches_the_proxy_as_the_mask(fake_discord: FakeDiscord, proxy: BotSim,
                                                                 tmp_path: Path, browser: Browser,
                                                                 touch: bool) -> None:
    fake = fake_discord
    runner = InProcessBot(proxy.env(fake, tmp_path / "relay.db", PROGRESS_EDIT_SECONDS="0.05"))
    await runner.start(fake)
    try:
        upscale = await upscale_card(fake, proxy)
        url = await editor_link(fake, upscale)
        assert [s.button for s in proxy.sent() if s.kind == "press"] == ["U1"], "the click itself sends nothing"

        context = await browser.new_context(viewport={"width": 390, "height": 700}, has_touch=touch)
        page = await context.new_page()
        outside: list[str] = []
        page.on("request", lambda request: outside.append(request.url) if "/editor/" not in request.url else None)
        assert (response := await page.goto(url)) is not None and response.status == 200
        await page.wait_for_function("() => { const i = document.getElementById('original');"
                                     " return i.complete && i.naturalWidth > 0; }", polling=50)
        size = await page.evaluate("() => { const i = document.getElementById('original');"
                                   " return [i.naturalWidth, i.naturalHeight]; }")
        width, height = int(size[0]), int(size[1])
        stroke = [(width * 0.2, height * 0.25), (width * 0.7, height * 0.3), (width * 0.6, height * 0.7)]
        await page.get_by_label("Brush size").fill(str(BRUSH_PERCENT))
        await paint(page, (width, height), stroke, touch)
        await page.get_by_label("Prompt").fill("a lighthouse, a storm rolling in")
        send = page.get_by_role("button", name="Send to Midjourney")
        await (send.tap() if touch else send.click())
        await page.locator("#status").filter(has_text="Sent").wait_for()
        assert "job #3" in (await page.locator("#status").text_content() or "")
        assert outside == []

        await eventually(lambda: modal_masks(proxy))
        (mask_png,) = modal_masks(proxy)
        mask = Image.open(io.BytesIO(mask_png))
        assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (width, height))
        expected = expected_stroke((width, height), stroke, width * BRUSH_PERCENT / 100)
        agree = ImageChops.difference(mask, expected).histogram()[0] / (width * height)
        assert agree >= 0.99, f"{agree:.2%} of pixels agree"
        prompts = [s.prompt for s in proxy.sent() if s.kind == "prompt"]
        assert prompts == ["a lighthouse, a storm rolling in"]
        assert [s.button for s in proxy.sent() if s.kind == "press"] == ["U1", "Vary (Region)"]

        await proxy.complete(await job_soon(proxy, 3))
        redrawn = await card(fake, 3)
        assert "Vary (Region) of #2" in redrawn["content"]

        # The link sent once: opened again, or replayed, it says so and sends nothing more.
        again = await page.goto(url)
        assert again is not None and again.status == 410
        assert (await page.locator("#status").text_content()) == Refusal.USED.sentence
        async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": "x", "mask": ""}) as replay:
            assert replay.status in (400, 410)
        assert len(modal_masks(proxy)) == 1
        await context.close()
        assert fake.spec_errors == []
    finally:
        await runner.stop()


async def test_a_link_outlives_a_restart_and_opening_it_spends_nothing(fake_discord: FakeDiscord, proxy: BotSim,
                                                                       tmp_path: Path) -> None:
    fake = fake_discord
    env = proxy.env(fake, tmp_path / "relay.db")
    first = InProcessBot(env)
    await first.start(fake)
    try:
        url = await editor_link(fake, await upscale_card(fake, proxy))
    finally:
        await first.stop()
    second = InProcessBot(env)
    await second.start(fake)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # a link preview, then the member: both see the editor
                async with session.get(url) as page:
                    assert page.status == 200 and "Send to Midjourney" in await page.text()
            async with session.get(url + "/image") as image:
                assert image.status == 200 and image.content_type.startswith("image/")
    finally:
        await second.stop()
    assert proxy.sim.calls("submit/modal") == []  # type: ignore[attr-defined]


async def test_without_a_public_address_the_click_says_the_editor_needs_one(fake_discord: FakeDiscord,
                                                                            proxy: BotSim, tmp_path: Path) -> None:
    fake = fake_discord
    runner = InProcessBot(proxy.env(fake, tmp_path / "relay.db", callbacks=False))
    await runner.start(fake)
    try:
        upscale = await upscale_card(fake, proxy)
        answer = await private(await fake.click(int(upscale["id"]),
                                                str(button_of(upscale, "Vary (Region)")["custom_id"]), user=ALICE))
        assert answer == NEEDS_PUBLIC_URL
        assert [s.button for s in proxy.sent() if s.kind == "press"] == ["U1"]
    finally:
        await runner.stop()
