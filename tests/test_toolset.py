"""Image prompts, /describe and /blend end to end on both backends: what each backend receives (useapi: links
to the bot's own listener, which serve the kept bytes; mj-proxy: the bytes), what Discord shows, and that a
bad image is refused before anything is sent."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from bot.backends.useapi.simulator import Simulator as UseapiSimulator
from tests.backend_sims import SIMS, BotSim, MjproxySim, UseapiSim, bot_on, job_soon
from tests.fakediscord import ALICE, BOB, GUILD_ID, FakeDiscord
from tests.harness import eventually
from tests.test_buttons import button_of, card, names, private

JSON = dict[str, Any]


def picture(kind: str, colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=kind)
    return out.getvalue()


PNG = picture("PNG", (200, 30, 30))
JPEG = picture("JPEG", (30, 30, 200))
WEBP = picture("WEBP", (30, 200, 30))




def requests_to(sim: BotSim, suffix: str) -> list[JSON]:
    """The bodies of the backend's requests whose path ends with `suffix`."""
    inner: UseapiSimulator | MjproxySimulator = sim.sim  # type: ignore[attr-defined]
    return [call.body or {} for call in inner.requests if call.path.endswith(suffix)]


def decoded(data_url: str) -> bytes:
    header, _, payload = data_url.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return base64.b64decode(payload)


async def fetched(url: str) -> bytes:
    """What Midjourney gets when it fetches a link useapi was given."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, url
        return await response.read()


async def images_received(sim: BotSim, fake: FakeDiscord, command: str) -> list[bytes]:
    """The images the backend received with its last `command` (imagine, describe, blend), as bytes: useapi's
    links fetched (they must lead to the bot's listener, never to Discord's expiring attachment links),
    mj-proxy's data URLs decoded."""
    if isinstance(sim, UseapiSim):
        (body,) = requests_to(sim, f"jobs/{command}")[-1:]
        if command == "imagine":
            links = [word for word in str(body["prompt"]).split() if word.startswith("http")]
        else:
            links = [body["describeUrl"]] if command == "describe" else list(body["blendUrls"])
        assert all("/images/" in link and not link.startswith(fake.root) for link in links), links
        return [await fetched(link) for link in links]
    assert isinstance(sim, MjproxySim)
    (body,) = requests_to(sim, f"submit/{command}")[-1:]
    urls = [body["base64"]] if command == "describe" else body.get("base64Array") or []
    return [decoded(url) for url in urls]


async def test_image_prompts_are_kept_and_reach_the_backend(fake_discord: FakeDiscord, backend: BotSim,
                                                            tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path, USEAPI_MAX_JOBS="1", MJPROXY_MAX_JOBS="1"):
        await fake.slash("imagine", {"prompt": "first in line"}, user=ALICE)
        first = await job_soon(backend, 1)
        # The slot is taken: this one waits, and Discord's links to its images expire meanwhile.
        record = await fake.slash("imagine", {"prompt": "a red fox in snow", "image1": ("fox.png", PNG),
                                              "image2": ("snow.jpg", JPEG)}, user=ALICE)
        assert "is on its way" in await private(record)
        fake.attachments.clear()
        await backend.complete(first)
        second = await job_soon(backend, 2)
        assert await images_received(backend, fake, "imagine") == [PNG, JPEG]
        await backend.complete(second)
        shown = await card(fake, 2)
        assert "a red fox in snow" in shown["content"] and "U1" in names(shown)


@pytest.mark.parametrize(("filename", "data", "said"), [
    ("notes.txt", b"just some words", "is not an image"),
    ("fake.png", b"this is not a png at all", "is not a PNG, JPEG, WebP or GIF image"),
    ("huge.png", PNG + b"\0" * (10 * 1024 * 1024), "at most 10.0 MiB"),
])
async def test_a_bad_image_is_refused_before_anything_is_sent(fake_discord: FakeDiscord, backend: BotSim,
                                                              tmp_path: Path, filename: str, data: bytes,
                                                              said: str) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        record = await fake.slash("imagine", {"prompt": "a fox", "image1": (filename, data)}, user=ALICE)
        answer = await private(record)
        assert said in answer and f"`{filename}`" in answer and answer.count("Nothing was sent") == 1
        record = await fake.slash("blend", {"image1": ("a.png", PNG), "image2": (filename, data)}, user=ALICE)
        assert said in await private(record)
        assert backend.sent() == [] and requests_to(backend, "blend") == []


async def test_useapi_needs_a_public_address_for_images(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with SIMS["useapi"]() as sim, bot_on(fake, sim, tmp_path, callbacks=False):
        record = await fake.slash("imagine", {"prompt": "a fox", "image1": ("fox.png", PNG)}, user=ALICE)
        answer = await private(record)
        assert "PUBLIC_URL" in answer and "fetches images by link" in answer
        assert (await private(await fake.slash("describe", {"image": ("fox.png", PNG)}, user=ALICE))) == answer
        assert sim.sent() == [] and requests_to(sim, "describe") == []


async def test_mjproxy_takes_images_without_a_public_address(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with SIMS["mjproxy"]() as sim, bot_on(fake, sim, tmp_path, callbacks=False):
        assert "is on its way" in await private(
            await fake.slash("imagine", {"prompt": "a fox", "image1": ("fox.webp", WEBP)}, user=ALICE))
        await job_soon(sim, 1)
        assert await images_received(sim, fake, "imagine") == [WEBP]


def describing(message: JSON) -> bool:
    return bool(message.get("components")) and "1️⃣" in message.get("content", "")


async def test_describe_suggests_four_prompts_that_start_an_imagine(fake_discord: FakeDiscord, backend: BotSim,
                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        assert "is on its way" in await private(await fake.slash("describe", {"image": ("fox.png", PNG)}, user=ALICE))
        described = await job_soon(backend, 1)
        assert await images_received(backend, fake, "describe") == [PNG]
        await backend.complete(described)
        shown = await card(fake, 1, describing)
        assert names(shown) == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "🔄"]
        lines = [line for line in shown["content"].splitlines() if line[:1] in "1234"]
        assert len(lines) == 4 and "Describe" in shown["content"]
        second = lines[1].split(" ", 1)[1]

        # The owner's buttons by default: another member is told so, and nothing is sent.
        refused = await fake.click(int(shown["id"]), str(button_of(shown, "2️⃣")["custom_id"]), user=BOB)
        assert "can use the buttons of job #1" in await private(refused)
        picked = await fake.click(int(shown["id"]), str(button_of(shown, "2️⃣")["custom_id"]), user=ALICE)
        assert "Job #2 is on its way" in await private(picked)
        await job_soon(backend, 2)
        (imagined,) = [sent for sent in backend.sent() if sent.kind == "imagine"]
        assert imagined.prompt == second.replace("\\", "")

        again = await fake.click(int(shown["id"]), str(button_of(shown, "🔄")["custom_id"]), user=ALICE)
        assert "Job #3 is on its way" in await private(again)
        await job_soon(backend, 3)
        assert await images_received(backend, fake, "describe") == [PNG]


async def test_anyone_may_pick_a_prompt_where_the_policy_says_so(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with SIMS["mjproxy"]() as sim, bot_on(fake, sim, tmp_path) as runner:
        assert runner.bot is not None
        await runner.bot.store.teams.update_guild_settings(GUILD_ID, policy="everyone")
        await private(await fake.slash("describe", {"image": ("fox.png", PNG)}, user=ALICE))
        await sim.complete(await job_soon(sim, 1))
        shown = await card(fake, 1, describing)
        picked = await fake.click(int(shown["id"]), str(button_of(shown, "3️⃣")["custom_id"]), user=BOB)
        assert "Job #2 is on its way" in await private(picked)
        job = await eventually(lambda: runner.bot and runner.bot.store.jobs.get(2))
        assert job.owner_id == BOB and job.kind == "imagine"  # the clicker's job, on the clicker's queue and quota


async def test_blend_makes_a_grid_of_the_chosen_shape(fake_discord: FakeDiscord, backend: BotSim,
                                                      tmp_path: Path) -> None:
    fake = fake_discord
    async with bot_on(fake, backend, tmp_path):
        record = await fake.slash("blend", {"image1": ("a.png", PNG), "image2": ("b.jpg", JPEG),
                                            "image3": ("c.webp", WEBP), "dimensions": "portrait"}, user=ALICE)
        assert "is on its way" in await private(record)
        blended = await job_soon(backend, 1)
        assert await images_received(backend, fake, "blend") == [PNG, JPEG, WEBP]
        (body,) = requests_to(backend, "blend")
        assert body.get("blendDimensions", body.get("dimensions")) in ("Portrait", "PORTRAIT")
        await backend.complete(blended)
        shown = await card(fake, 1)
        assert "Blend (portrait)" in shown["content"] and names(shown)[:4] == ["U1", "U2", "U3", "U4"]


async def test_describe_by_link_fetches_only_public_or_allowed_addresses(fake_discord: FakeDiscord,
                                                                         tmp_path: Path) -> None:
    fake = fake_discord
    app = aiohttp.web.Application()

    async def image(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=PNG, content_type="image/png")

    app.router.add_get("/fox.png", image)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with SIMS["mjproxy"]() as sim:
            async with bot_on(fake, sim, tmp_path / "a"):
                for url in (f"http://127.0.0.1:{port}/fox.png", f"http://[::1]:{port}/fox.png",
                            f"http://localhost:{port}/fox.png", "http://169.254.169.254/latest/meta-data/"):
                    answer = await private(await fake.slash("describe", {"url": url}, user=ALICE))
                    assert "private or local" in answer, (url, answer)
                answer = await private(await fake.slash("describe", {"url": "file:///etc/passwd"}, user=ALICE))
                assert "http:// or https://" in answer
                assert requests_to(sim, "describe") == []
            async with bot_on(fake, sim, tmp_path / "b", IMAGE_URL_ALLOW_NETWORKS="127.0.0.0/8"):
                answer = await private(await fake.slash("describe", {"url": f"http://127.0.0.1:{port}/fox.png"},
                                                        user=ALICE))
                assert "is on its way" in answer
                await job_soon(sim, 1)
                assert await images_received(sim, fake, "describe") == [PNG]
    finally:
        await runner.cleanup()
