"""/submit/describe, /submit/blend and GET /task/{id}/image-seed over loopback: the exact bodies the proxy
receives, what the simulator answers, and what MjproxyBackend makes of it."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from bot.backends.base import BackendError, BackendStatus, ImagePrompt
from bot.backends.mjproxy import MjproxyClient
from bot.backends.mjproxy.backend import MjproxyBackend
from bot.backends.mjproxy.simulator import Simulator
from bot.backends.mjproxy.simulator.tasks import seed_of
from bot.backends.replies import described_prompts
from bot.jobs import ErrorKind

from .conftest import TOKEN, done_grid

PNG = b"\x89PNG\r\n\x1a\nsimulated"
JPEG = b"\xff\xd8\xffsimulated"
PNG_URL = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
JPEG_URL = f"data:image/jpeg;base64,{base64.b64encode(JPEG).decode()}"
LINK = "https://relay.example.org/images/cat.png"
HEADERS = {"mj-api-secret": TOKEN}


@pytest.fixture
def backend(manual_client: MjproxyClient) -> MjproxyBackend:
    return MjproxyBackend(manual_client)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=HEADERS) as response:
        return response.status, await response.json(content_type=None)


# ---- the bodies the proxy receives


async def test_describe_and_blend_send_their_dtos(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    made = await manual_client.describe(base64=PNG_URL, notify_hook="http://127.0.0.1:9/hook", state="r-1")
    assert (made.code, made.description) == (1, "提交成功")
    assert manual_sim.calls("submit/describe")[-1].body == {"base64": PNG_URL, "notifyHook": "http://127.0.0.1:9/hook",
                                                            "state": "r-1"}
    await manual_client.describe(link=LINK)
    assert manual_sim.calls("submit/describe")[-1].body == {"link": LINK}
    await manual_client.blend([PNG_URL, JPEG_URL], "PORTRAIT", state="r-2")
    assert manual_sim.calls("submit/blend")[-1].body == {"base64Array": [PNG_URL, JPEG_URL], "dimensions": "PORTRAIT",
                                                         "state": "r-2"}


async def test_the_backend_sends_the_kept_bytes(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    started = await backend.describe(ImagePrompt(PNG, "image/png", LINK), ref="r-1", callback_url=None)
    assert (started.status, started.ref, started.prompt) == (BackendStatus.RUNNING, "r-1", None)
    assert manual_sim.calls("submit/describe")[-1].body == {"base64": PNG_URL, "state": "r-1"}
    await backend.describe(ImagePrompt(b"", "image/png", LINK), ref="r-2", callback_url=None)
    assert manual_sim.calls("submit/describe")[-1].body == {"link": LINK, "state": "r-2"}
    await backend.blend([ImagePrompt(PNG, "image/png"), ImagePrompt(JPEG, "image/jpeg")], dimensions="landscape",
                        ref="r-3", callback_url="http://127.0.0.1:9/hook", max_jobs=3)
    assert manual_sim.calls("submit/blend")[-1].body == {
        "base64Array": [PNG_URL, JPEG_URL], "dimensions": "LANDSCAPE", "notifyHook": "http://127.0.0.1:9/hook",
        "state": "r-3"}
    grid = await done_grid(manual_sim, backend.client)
    await backend.seed(grid)
    (asked,) = manual_sim.calls("image-seed")
    assert (asked.method, asked.path, asked.body) == ("GET", f"/mj/task/{grid}/image-seed", None)


@pytest.mark.parametrize(("images", "dimensions", "field"), [
    ([ImagePrompt(PNG, "image/png")], "square", "base64Array"),
    ([ImagePrompt(PNG, "image/png")] * 6, "square", "base64Array"),
    ([ImagePrompt(PNG, "image/png"), ImagePrompt(b"", "image/png", LINK)], "square", "base64Array"),
    ([ImagePrompt(PNG, "image/png")] * 2, "SQUARE", "dimensions"),  # the relay's words are lower case
])
async def test_a_blend_the_proxy_would_refuse_is_refused_before_sending(
        manual_sim: Simulator, backend: MjproxyBackend, images: list[ImagePrompt], dimensions: str,
        field: str) -> None:
    with pytest.raises(BackendError) as refused:
        await backend.blend(images, dimensions=dimensions, ref="r", callback_url=None, max_jobs=3)
    assert (refused.value.kind, refused.value.field_name) == (ErrorKind.BAD_REQUEST, field)
    assert not manual_sim.calls("submit/blend")


async def test_describe_without_bytes_or_link_is_refused(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    with pytest.raises(BackendError) as refused:
        await backend.describe(ImagePrompt(b"", "image/png"), ref="r", callback_url=None)
    assert refused.value.kind is ErrorKind.BAD_REQUEST and not manual_sim.calls("submit/describe")


# ---- what the simulator answers


@pytest.mark.parametrize(("path", "body", "code", "words"), [
    ("describe", {}, 4, "base64或link不能为空"),
    ("describe", {"link": "ftp://x/y.png"}, 4, "链接格式错误"),
    ("describe", {"base64": "not a data url"}, 4, "base64格式错误"),
    ("describe", {"base64": 5}, -1, "参数异常"),
    ("blend", {"base64Array": [PNG_URL]}, 4, "图片参数错误，2~5张图片"),
    ("blend", {"base64Array": [PNG_URL] * 6}, 4, "图片参数错误，2~5张图片"),
    ("blend", {"base64Array": [PNG_URL, "x"]}, 4, "base64格式错误"),
    ("blend", {"base64Array": [PNG_URL, PNG_URL], "dimensions": None}, 4, "dimensions参数错误"),
    ("blend", {"base64Array": [PNG_URL, PNG_URL], "dimensions": "Portrait"}, -1, "参数异常"),
])
async def test_the_new_routes_check_their_bodies(sim: Simulator, session: aiohttp.ClientSession, path: str,
                                                 body: dict[str, Any], code: int, words: str) -> None:
    status, answer = await _post(session, f"{sim.base_url}/submit/{path}", body)
    assert (status, answer["code"], answer.get("description") or answer.get("message")) == (200, code, words)
    assert not sim.tasks


async def test_a_describe_finishes_with_midjourneys_four_prompts(manual_sim: Simulator,
                                                                manual_client: MjproxyClient) -> None:
    made = await manual_client.describe(link=LINK)
    assert made.result is not None
    task = manual_sim.tasks[made.result]
    assert (task["action"], task["description"], task["properties"]["describeSource"]) == ("DESCRIBE", "/describe",
                                                                                          "link")
    await manual_sim.complete(made.result)
    done = await manual_client.fetch(made.result)
    final = done.properties["finalPrompt"]
    assert final.startswith("1\ufe0f\u20e3 ") and final.count("\n\n") == 3 and done.description == final
    assert len(described_prompts(final)) == 4 and not done.buttons and done.imageUrl


async def test_a_blend_is_a_grid(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    made = await manual_client.blend([PNG_URL, JPEG_URL], "LANDSCAPE")
    assert made.result is not None
    task = manual_sim.tasks[made.result]
    assert task["description"] == f"/blend {made.result} 2" and task["promptEn"].endswith(" --ar 3:2")
    await manual_sim.complete(made.result)
    done = await manual_client.fetch(made.result)
    assert [button.name for button in done.buttons][:4] == ["U1", "U2", "U3", "U4"]
    assert done.properties["finalPrompt"].startswith("<https://s.mj.run/")
    square = await manual_client.blend([PNG_URL, PNG_URL], "SQUARE")
    assert "--ar" not in manual_sim.tasks[square.result or ""]["promptEn"]


async def test_image_seed_answers_the_seed_of_a_finished_task(manual_sim: Simulator, manual_client: MjproxyClient,
                                                              session: aiohttp.ClientSession) -> None:
    running = await manual_client.imagine("a cat")
    async with session.get(f"{manual_sim.base_url}/task/{running.result}/image-seed", headers=HEADERS) as response:
        assert response.status == 400 and (await response.json())["description"] == "关联任务状态错误"
    await manual_sim.complete(running.result or "")
    answered = await manual_client.image_seed(running.result or "")
    assert (answered.code, answered.description, answered.result) == (1, "成功", seed_of(running.result or ""))
    assert manual_sim.tasks[running.result or ""]["seed"] == answered.result  # kept, as TaskInfo.Seed


# ---- what the backend makes of it


async def test_the_backend_reads_a_describes_prompts_and_a_blends_grid(manual_sim: Simulator,
                                                                       backend: MjproxyBackend) -> None:
    described = await backend.describe(ImagePrompt(PNG, "image/png"), ref="r-1", callback_url=None)
    await manual_sim.complete(described.job_id)
    done = await backend.get(described.job_id)
    assert done.status is BackendStatus.DONE and len(done.prompts) == 4 and all(done.prompts)
    assert not any(prompt.startswith("1") for prompt in done.prompts)
    blended = await backend.blend([ImagePrompt(PNG, "image/png")] * 3, dimensions="portrait", ref="r-2",
                                  callback_url=None, max_jobs=3)
    await manual_sim.complete(blended.job_id)
    grid = await backend.get(blended.job_id)
    assert [button.name for button in grid.buttons][:4] == ["U1", "U2", "U3", "U4"] and grid.prompts == ()


async def test_the_seed_and_its_failures(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    grid = await done_grid(manual_sim, backend.client)
    assert await backend.seed(grid) == seed_of(grid)
    running = await backend.imagine("a dog", ref="r-3", callback_url=None, max_jobs=3)
    with pytest.raises(BackendError) as unfinished:
        await backend.seed(running.job_id)
    assert (unfinished.value.kind, unfinished.value.field_name) == (ErrorKind.BAD_REQUEST, "taskId")
    with pytest.raises(BackendError) as missing:
        await backend.seed("999999999999999999")
    assert missing.value.kind is ErrorKind.NOT_FOUND
    # TaskService.SubmitSeed's answer when Midjourney's reply never came: HTTP 200 (Ok(data)), code 3.
    manual_sim.inject("image-seed", 200, {"code": 3, "description": "未找到 seed", "result": None, "properties": {}})
    with pytest.raises(BackendError) as no_seed:
        await backend.seed(grid)
    assert no_seed.value.kind is ErrorKind.UNSUPPORTED and "admin console" in no_seed.value.detail
