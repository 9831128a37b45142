"""The region editor in a real browser: Debian's headless Chromium, driven by Playwright, against the real routes.

Playwright cannot download its own browser here, so it launches the system's (`apt-get install -y chromium`;
.ci/run installs it when missing). Without it these tests fail, never skip: a skipped browser test would let
a broken page through CI unnoticed.

Each test paints with real input (mouse events, or touch events through the browser's input pipeline),
submits, and compares the mask the relay's hook receives with the same marks rasterised here by Pillow at
the original's size.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import shutil
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image, ImageChops, ImageDraw
from playwright.async_api import Browser, BrowserContext, CDPSession, Page, async_playwright, expect

from bot.editor import Refusal, editor_url
from tests.editor.rig import SENT, EditorServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

W, H = 600, 400  # the original's size: wider than tall, so a swapped axis shows
Point = tuple[float, float]
# Root runs Chromium without its sandbox; the rest keep a headless browser from reaching for the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT_ENV = "EDITOR_SCREENSHOT"  # a path: the README's screenshot is written there (docs/editor.png)


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("The editor's browser tests need Debian's Chromium: run `apt-get install -y chromium` "
                "(.ci/run installs it), or set CHROMIUM to a Chromium binary.", pytrace=False)


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, through Playwright; closed on leaving."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One browser for the module; each test gets its own context (Playwright gives each launch a new profile)."""
    async with headless_chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def server() -> AsyncIterator[EditorServer]:
    editor = EditorServer(W, H)
    await editor.start()
    try:
        yield editor
    finally:
        await editor.close()


@pytest_asyncio.fixture(loop_scope="module")
async def desktop(browser: Browser) -> AsyncIterator[BrowserContext]:
    # 520 px wide: the image shows at about 0.8 of its size, so the page must map the screen to its pixels.
    context = await browser.new_context(viewport={"width": 520, "height": 800})
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 390, "height": 640}, has_touch=True)
    try:
        yield context
    finally:
        await context.close()


# What went wrong in each page `open_editor` opened: script errors, CSP violations, requests elsewhere.
PROBLEMS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


async def open_editor(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    problems = PROBLEMS.setdefault(page, [])
    # A Content-Security-Policy violation or a script error would break the page silently: fail instead.
    # (The browser's own favicon.ico request finds nothing on the listener: that is no problem of the page.)
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: problems.append(f"outside request: {request.url}")
            if not request.url.startswith(url.rsplit("/editor/", 1)[0] + "/editor/") else None)
    response = await page.goto(url)
    assert response is not None and response.status == 200
    await page.wait_for_function("() => { const i = document.getElementById('original');"
                                 " return i.complete && i.naturalWidth > 0; }", polling=50)
    return page


def no_problems(page: Page) -> None:
    assert PROBLEMS[page] == []


async def screen(page: Page, points: Sequence[Point]) -> list[Point]:
    """Image pixels to the page's CSS pixels, from where the canvas shows."""
    box = await page.locator("#paint").bounding_box()
    assert box is not None
    assert box["width"] < W * 0.95  # shown scaled down, so the mapping is exercised
    return [(box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H) for x, y in points]


def path_through(points: Sequence[Point], steps: int = 12) -> list[Point]:
    """Points along the segments between `points`, as a hand moving between them would report."""
    out = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        out += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return out


async def mouse_drag(page: Page, points: Sequence[Point]) -> None:
    on_screen = await screen(page, points)
    await page.mouse.move(*on_screen[0])
    await page.mouse.down()
    for x, y in path_through(on_screen)[1:]:
        await page.mouse.move(x, y)
    await page.mouse.up()


async def touch_drag(page: Page, cdp: CDPSession, points: Sequence[Point]) -> None:
    """A finger's drag, dispatched as touch input (it becomes pointer events of type "touch" in the page)."""
    on_screen = await screen(page, points)
    along = path_through(on_screen)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": along[0][0],
                                                                                      "y": along[0][1]}]})
    for x, y in along[1:]:
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    # The finger rests before it lifts, as a hand does at a stroke's end. Lifted while moving, the drag would be
    # a fling to the browser, and it drops a tap that follows a fling at once (the next tool's tap, here).
    await asyncio.sleep(0.2)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


# Whether the page's marking layer is painted at an image pixel ([x, y]): what the member sees there.
PAINTED_AT = "(([x, y]) => document.getElementById('paint').getContext('2d').getImageData(x, y, 1, 1).data[3] > 0)"


async def painted_at(page: Page, point: Point) -> bool:
    return bool(await page.evaluate(PAINTED_AT, list(point)))


class Expected:
    """The marks rasterised by Pillow at the original's size: what the mask should be."""

    def __init__(self) -> None:
        self.image = Image.new("L", (W, H), 0)
        self._draw = ImageDraw.Draw(self.image)

    def stroke(self, points: Sequence[Point], diameter: float) -> None:
        radius = diameter / 2
        self._draw.line(list(points), fill=255, width=round(diameter), joint="curve")
        for x, y in points:  # round caps and joins
            self._draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)

    def lasso(self, points: Sequence[Point]) -> None:
        self._draw.polygon(list(points), fill=255)


def compare(mask_png: bytes, expected: Expected) -> tuple[float, float]:
    """(share of pixels that agree, intersection over union of the marked areas)."""
    mask = Image.open(io.BytesIO(mask_png))
    assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (W, H))
    assert {value for value, count in enumerate(mask.histogram()) if count} == {0, 255}
    agree = ImageChops.difference(mask, expected.image).histogram()[0] / (W * H)
    both = ImageChops.multiply(mask, expected.image).histogram()[255]
    either = ImageChops.lighter(mask, expected.image).histogram()[255]
    return agree, both / either


async def submitted(page: Page, server: EditorServer, sentence: str = SENT) -> None:
    await page.locator("#status").filter(has_text=sentence).wait_for()
    assert await page.locator("#submit").is_disabled()  # the link sends once: the page says so by its button


# Marks used by both input kinds, in the original's pixels.
STROKE = [(60.0, 60.0), (260.0, 60.0), (260.0, 150.0)]  # an L: a corner and two ends
LASSO = [(330.0, 200.0), (560.0, 230.0), (520.0, 370.0), (360.0, 340.0)]
UNDONE = [(80.0, 320.0), (250.0, 300.0)]  # painted, then undone
BRUSH_PERCENT = 8  # of the image's width: a 48 px brush


async def test_painting_and_lassoing_with_a_mouse_sends_that_region(desktop: BrowserContext,
                                                                   server: EditorServer) -> None:
    link, url = await server.link()
    page = await open_editor(desktop, url)
    assert await page.locator("#prompt").input_value() == server.hooks.original_image.prompt
    assert await page.locator("#undo").is_disabled()
    await page.get_by_label("Brush size").fill(str(BRUSH_PERCENT))
    await mouse_drag(page, STROKE)
    await page.get_by_role("radio", name="Lasso").check()
    await mouse_drag(page, LASSO)
    await page.get_by_role("radio", name="Brush").check()
    await mouse_drag(page, UNDONE)
    assert await painted_at(page, UNDONE[0])
    await page.get_by_role("button", name="Undo").click()
    assert not await painted_at(page, UNDONE[0])
    await take_screenshot(page)
    await page.get_by_label("Prompt").fill("a lighthouse on a cliff, a storm rolling in")
    await page.get_by_role("button", name="Send to Midjourney").click()
    await submitted(page, server)

    [sent] = server.hooks.sent
    assert (sent.link.token, sent.prompt) == (link.token, "a lighthouse on a cliff, a storm rolling in")
    expected = Expected()
    expected.stroke(STROKE, W * BRUSH_PERCENT / 100)
    expected.lasso(LASSO)
    agree, overlap = compare(sent.mask_png, expected)
    assert agree >= 0.99, f"{agree:.2%} of pixels agree"
    assert overlap >= 0.95, f"the marked areas overlap {overlap:.2%}"
    no_problems(page)


async def test_painting_and_lassoing_with_touch_sends_that_region(phone: BrowserContext,
                                                                 server: EditorServer) -> None:
    _, url = await server.link()
    page = await open_editor(phone, url)
    cdp = await phone.new_cdp_session(page)
    await page.get_by_label("Brush size").fill(str(BRUSH_PERCENT))
    scrolled = await page.evaluate("() => [window.scrollX, window.scrollY]")
    await touch_drag(page, cdp, STROKE)
    # A tap's click comes after its touch events: each is awaited before the next gesture starts.
    await page.get_by_role("radio", name="Lasso").tap()
    await expect(page.get_by_role("radio", name="Lasso")).to_be_checked()
    await touch_drag(page, cdp, LASSO)
    await page.get_by_role("radio", name="Brush").tap()
    await expect(page.get_by_role("radio", name="Brush")).to_be_checked()
    await touch_drag(page, cdp, UNDONE)
    # A drag on the image paints and never scrolls or zooms the page (touch-action: none).
    assert await page.evaluate("() => [window.scrollX, window.scrollY]") == scrolled
    assert await painted_at(page, UNDONE[0])
    await page.get_by_role("button", name="Undo").tap()
    await page.wait_for_function(f"(point) => !{PAINTED_AT}(point)", arg=list(UNDONE[0]))
    await page.get_by_role("button", name="Send to Midjourney").tap()
    await submitted(page, server)

    expected = Expected()
    expected.stroke(STROKE, W * BRUSH_PERCENT / 100)
    expected.lasso(LASSO)
    agree, overlap = compare(server.hooks.sent[0].mask_png, expected)
    assert agree >= 0.99, f"{agree:.2%} of pixels agree"
    assert overlap >= 0.95, f"the marked areas overlap {overlap:.2%}"
    no_problems(page)


async def test_clear_leaves_nothing_to_send(desktop: BrowserContext, server: EditorServer) -> None:
    link, url = await server.link()
    page = await open_editor(desktop, url)
    await page.get_by_role("button", name="Send to Midjourney").click()
    await page.locator("#status").filter(has_text="Paint or lasso the area to redraw first").wait_for()
    await mouse_drag(page, STROKE)
    await page.get_by_role("button", name="Clear").click()
    assert await page.locator("#clear").is_disabled()
    await page.get_by_role("button", name="Send to Midjourney").click()
    await page.locator("#status").filter(has_text="Paint or lasso the area to redraw first").wait_for()
    assert server.hooks.sent == []
    stored = await server.links.get(link.token)
    assert stored is not None and stored.used_at is None
    no_problems(page)


async def refusal_shown(context: BrowserContext, url: str, status: int, refusal: Refusal) -> None:
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.status == status
    assert (await page.locator("#status").text_content()) == refusal.sentence
    assert await page.locator("canvas").count() == 0
    await page.close()


async def test_a_forged_link_shows_its_sentence(desktop: BrowserContext, server: EditorServer) -> None:
    await server.link()
    await refusal_shown(desktop, editor_url(server.base_url, "A" * 43), 403, Refusal.INVALID)
    await refusal_shown(desktop, editor_url(server.base_url, "not-a-token"), 403, Refusal.INVALID)


async def test_an_expired_link_shows_its_sentence_opened_or_sent(desktop: BrowserContext,
                                                                server: EditorServer) -> None:
    _, open_late = await server.link()
    _, open_early = await server.link()
    page = await open_editor(desktop, open_early)
    server.clock.advance(timedelta(minutes=15))
    await refusal_shown(desktop, open_late, 410, Refusal.EXPIRED)
    # The page opened in time and sent too late: the sentence replaces the editor's controls.
    await mouse_drag(page, STROKE)
    await page.get_by_role("button", name="Send to Midjourney").click()
    await submitted(page, server, Refusal.EXPIRED.sentence)
    assert server.hooks.sent == []


async def test_a_replayed_link_shows_its_sentence_opened_or_sent(desktop: BrowserContext,
                                                                server: EditorServer) -> None:
    _, url = await server.link()
    first = await open_editor(desktop, url)
    second = await open_editor(desktop, url)  # the same link open twice: a second tab, another device
    for page in (first, second):
        await page.bring_to_front()  # a page in the background gets no animation frames
        await mouse_drag(page, STROKE)
    await first.bring_to_front()
    await first.get_by_role("button", name="Send to Midjourney").click()
    await submitted(first, server)
    await second.bring_to_front()
    await second.get_by_role("button", name="Send to Midjourney").click()
    await submitted(second, server, Refusal.USED.sentence)
    await refusal_shown(desktop, url, 410, Refusal.USED)
    assert len(server.hooks.sent) == 1


async def take_screenshot(page: Page) -> None:
    """The README's picture of the page with a region marked, when EDITOR_SCREENSHOT names where to write it.

    Quantised to 128 colours: the page is flat colours and one small picture, and the file stays small.
    """
    shot = Image.open(io.BytesIO(await page.screenshot(full_page=True))).convert("RGB").quantize(128)
    out = io.BytesIO()
    shot.save(out, "PNG", optimize=True)
    assert out.tell() < 200 * 1024
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        await asyncio.to_thread(Path(target).write_bytes, out.getvalue())
