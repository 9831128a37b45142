"""MjproxyBackend against the simulator: what the relay's calls send and what they answer, beyond the contract."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from bot.backends.base import Backend, BackendError, BackendStatus, Button, ImagePrompt
from bot.backends.mjproxy import MjproxyClient
from bot.backends.mjproxy.backend import FACTS, MjproxyBackend
from bot.backends.mjproxy.simulator import Simulator
from bot.jobs import ErrorKind

from .conftest import TOKEN, custom_id

PNG = b"\x89PNG\r\n\x1a\nsimulated"


@pytest.fixture
def backend(manual_client: MjproxyClient) -> MjproxyBackend:
    return MjproxyBackend(manual_client)


async def _done(sim: Simulator, backend: Backend, button: str | None = None, parent: str | None = None) -> str:
    if parent is None:
        made = await backend.imagine("a lighthouse", ref="r-1", callback_url=None, max_jobs=3)
    else:
        pressed = Button(button or "", custom_id(sim.tasks[parent], button or ""))
        made = await backend.press(parent, pressed, ref="r-2", callback_url=None, max_jobs=3)
    await sim.complete(made.job_id)
    return made.job_id


def _button(sim: Simulator, task_id: str, name: str) -> Button:
    return Button(name, custom_id(sim.tasks[task_id], name))


async def test_it_is_a_backend(manual_client: MjproxyClient) -> None:
    typed: Backend = MjproxyBackend(manual_client, simulated=True)
    assert typed.facts is FACTS and typed.simulated
    assert FACTS.label_start == "The mj-proxy" and FACTS.ref_limit == 255 and FACTS.region == {"Vary (Region)"}


async def test_imagine_sends_image_prompts_as_data_urls(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    started = await backend.imagine("a cat", ref="r-1", callback_url="http://127.0.0.1:9/hook", max_jobs=3,
                                    images=[ImagePrompt(PNG, "image/png")])
    assert started.status is BackendStatus.RUNNING and started.ref == "r-1"
    body = manual_sim.calls("submit/imagine")[-1].body or {}
    assert body["base64Array"] == [f"data:image/png;base64,{base64.b64encode(PNG).decode()}"]
    assert (body["state"], body["notifyHook"]) == ("r-1", "http://127.0.0.1:9/hook")
    await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3)
    assert "notifyHook" not in (manual_sim.calls("submit/imagine")[-1].body or {})


async def test_a_queued_submission_says_its_place(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    manual_sim.max_running = 1
    await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    queued = await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3)
    assert (queued.status, queued.queue_position) == (BackendStatus.QUEUED, 0)
    assert (await backend.get(queued.job_id)).status is BackendStatus.QUEUED


async def test_custom_zoom_goes_in_two_steps_and_is_never_sent_twice(manual_sim: Simulator,
                                                                     backend: MjproxyBackend) -> None:
    upscale = await _done(manual_sim, backend, "U1", await _done(manual_sim, backend))
    waiting = await backend.press(upscale, _button(manual_sim, upscale, "Custom Zoom"), ref="r-3",
                                  callback_url="http://127.0.0.1:9/h", max_jobs=3, prompt="a lighthouse --zoom 1.8")
    assert waiting.status is BackendStatus.AWAITING_PROMPT and waiting.ref == "r-3"
    assert (manual_sim.calls("submit/action")[-1].body or {})["enableRemix"] is True
    assert not manual_sim.calls("submit/modal")  # the relay keeps the task first, then gives the prompt
    assert (await backend.get(waiting.job_id)).status is BackendStatus.AWAITING_PROMPT
    sent = await backend.give_prompt(waiting.job_id, "a lighthouse --zoom 1.8")
    assert (sent.job_id, sent.status, sent.ref, sent.callback_url) == (waiting.job_id, BackendStatus.RUNNING, "r-3",
                                                                       "http://127.0.0.1:9/h")
    again = await backend.give_prompt(waiting.job_id, "a lighthouse --zoom 1.8")  # resumed after a crash
    assert again.status is BackendStatus.RUNNING and len(manual_sim.calls("submit/modal")) == 1


async def test_a_mask_goes_as_a_png_data_url(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    grid = await _done(manual_sim, backend)
    waiting = await backend.press(grid, _button(manual_sim, grid, "V3"), ref="r-4", callback_url=None, max_jobs=3,
                                  prompt="a lighthouse, at night")
    await backend.give_prompt(waiting.job_id, "a lighthouse, at night", mask=PNG)
    body = manual_sim.calls("submit/modal")[-1].body or {}
    assert body["maskBase64"] == f"data:image/png;base64,{base64.b64encode(PNG).decode()}"


async def test_remix_on_at_the_account_asks_for_a_prompt_even_without_one(manual_sim: Simulator,
                                                                          backend: MjproxyBackend) -> None:
    grid = await _done(manual_sim, backend)
    manual_sim.set_account_remix(True)
    pressed = await backend.press(grid, _button(manual_sim, grid, "V1"), ref="r-5", callback_url=None, max_jobs=3)
    assert pressed.status is BackendStatus.AWAITING_PROMPT
    assert "enableRemix" not in (manual_sim.calls("submit/action")[-1].body or {})


async def test_vary_region_sends_its_mask_in_the_modal_step(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    upscale = await _done(manual_sim, backend, "U1", await _done(manual_sim, backend))
    pressed = await backend.press(upscale, _button(manual_sim, upscale, "Vary (Region)"), ref="r-6", callback_url=None,
                                  max_jobs=3, prompt="a boat")
    assert pressed.status is BackendStatus.AWAITING_PROMPT
    mask = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    sent = await backend.give_prompt(pressed.job_id, "a red boat", mask=mask)
    assert sent.job_id == pressed.job_id
    (call,) = manual_sim.calls("submit/modal")
    modal = call.body or {}
    assert modal["prompt"] == "a red boat"
    assert modal["maskBase64"] == "data:image/png;base64," + base64.b64encode(mask).decode()


async def test_vary_region_without_its_mask_is_refused(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    upscale = await _done(manual_sim, backend, "U1", await _done(manual_sim, backend))
    pressed = await backend.press(upscale, _button(manual_sim, upscale, "Vary (Region)"), ref="r-7", callback_url=None,
                                  max_jobs=3, prompt="a boat")
    with pytest.raises(BackendError) as refused:
        await backend.give_prompt(pressed.job_id, "a red boat")
    assert refused.value.kind is ErrorKind.BAD_REQUEST


async def test_animate_makes_a_video(manual_sim: Simulator, backend: MjproxyBackend,
                                     session: aiohttp.ClientSession) -> None:
    upscale = await _done(manual_sim, backend, "U1", await _done(manual_sim, backend))
    video = await backend.get(await _done(manual_sim, backend, "Animate (High motion)", upscale))
    assert [item.kind for item in video.media] == ["video", "image"] and not video.buttons
    async with session.get(video.media[0].url) as response:
        assert response.content_type == "video/mp4" and (await response.read())[4:8] == b"ftyp"


async def test_get_many_is_one_request_and_none_for_nothing(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    ids = [(await backend.imagine(f"cat {n}", ref=f"r-{n}", callback_url=None, max_jobs=3)).job_id for n in range(3)]
    found = await backend.get_many([*ids, ids[0], "999999999999999999"])
    assert set(found) == set(ids) and len(manual_sim.calls("task/list-by-condition")) == 1
    assert await backend.get_many([]) == {} and len(manual_sim.calls("task/list-by-condition")) == 1


async def test_find_takes_the_newest_task_of_a_reference(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    older = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    newer = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    other = await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3)
    found = await backend.find(["r-1", "r-2", "r-3"])
    assert {ref: update.job_id for ref, update in found.items()} == {"r-1": newer.job_id, "r-2": other.job_id}
    assert older.job_id != newer.job_id
    assert await backend.find(["r-1", "r-2"], known=[older.job_id]) == {"r-2": found["r-2"]}
    assert await backend.find([]) == {}


async def test_callbacks_are_checked_for_the_task_shape(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    started = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    await manual_sim.progress(started.job_id, 30)
    body: dict[str, Any] = dict(manual_sim.tasks[started.job_id])
    hint = backend.read_callback(body)
    assert (hint.job_id, hint.status, hint.progress, hint.final) == (started.job_id, BackendStatus.RUNNING, 30, False)
    assert hint.preview_url == body["imageUrl"]
    assert backend.read_callback({**body, "id": int(started.job_id)}).job_id == started.job_id
    assert backend.read_callback({**body, "status": "SOMETHING_NEW"}).status is None
    cancelled = backend.read_callback({**body, "status": "FAILURE", "failReason": "取消任务"})
    assert cancelled.status is BackendStatus.CANCELLED and cancelled.final and cancelled.preview_url is None
    for odd in ({**body, "id": True}, {**body, "id": "1" * 65}, {"id": "1"}, {**body, "buttons": "U1"},
                {**body, "status": 5}):
        with pytest.raises(ValueError, match=r".+"):
            backend.read_callback(odd)


async def test_health_says_what_it_found(manual_sim: Simulator, session: aiohttp.ClientSession,
                                         backend: MjproxyBackend) -> None:
    lines = await backend.health()
    assert lines[0].startswith(f"The mj-proxy answers at {manual_sim.base_url}") and "MJPROXY_TOKEN" in lines[1]
    wrong = MjproxyBackend(MjproxyClient(session, manual_sim.base_url, "not-the-token"))
    with pytest.raises(BackendError) as refused:
        await wrong.health()
    assert refused.value.kind is ErrorKind.UNAUTHORISED and "not-the-token" not in str(refused.value)
    manual_sim.set_outage(True)
    with pytest.raises(BackendError) as down:
        await backend.health()
    assert (down.value.kind, down.value.status) == (ErrorKind.UNAVAILABLE, 503)
    async with Simulator(token=None, job_seconds=None) as open_proxy:
        guest = MjproxyBackend(MjproxyClient(session, open_proxy.base_url, None))
        assert "no MJPROXY_TOKEN is set" in (await guest.health())[1]


async def test_account_calls_point_at_the_proxy_admin(backend: MjproxyBackend) -> None:
    for call in (backend.accounts(), backend.reset("1280000000000000001"), backend.toggle_remix()):
        with pytest.raises(BackendError) as refused:
            await call
        assert refused.value.kind is ErrorKind.UNSUPPORTED and "admin" in refused.value.detail


async def test_the_kept_body_is_masked_and_secrets_stay_out(manual_sim: Simulator,
                                                            manual_client: MjproxyClient) -> None:
    masked = MjproxyBackend(manual_client, mask=lambda body: {**body, "clientIp": "masked"})
    started = await masked.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    assert (await masked.get(started.job_id)).raw["clientIp"] == "masked"
    assert TOKEN not in repr(masked)


async def test_cancel_and_failure_kinds(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    cancelled = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    await backend.cancel(cancelled.job_id)
    assert (await backend.get(cancelled.job_id)).status is BackendStatus.CANCELLED
    moderated = await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3)
    await manual_sim.fail(moderated.job_id, "Sorry! Our AI moderators feel your prompt might be against our "
                                            "community standards.")
    update = await backend.get(moderated.job_id)
    assert update.status is BackendStatus.MODERATED and update.error is not None and "AI moderators" in update.error
    with pytest.raises(BackendError) as refused:
        await backend.imagine("a forbidden door", ref="r-3", callback_url=None, max_jobs=3)
    assert (refused.value.kind, refused.value.word) == (ErrorKind.MODERATED, "forbidden")
