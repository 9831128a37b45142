"""A call's speed on the mj-proxy: its submission goes to that speed base (/mj-fast/mj, /mj-relax/mj, /mj-turbo/mj),
the task records the speed, reads stay on the configured base, and a base the proxy does not serve is UNSUPPORTED."""

from __future__ import annotations

import aiohttp
import pytest

from bot.backends.base import BackendError, BackendStatus, Button, ImagePrompt
from bot.backends.mjproxy import MjproxyClient
from bot.backends.mjproxy.backend import MjproxyBackend
from bot.backends.mjproxy.client import speed_base
from bot.backends.mjproxy.simulator import Simulator
from bot.jobs import ErrorKind

from .conftest import TOKEN, custom_id

PNG = b"\x89PNG\r\n\x1a\nsimulated"


@pytest.fixture
def backend(manual_client: MjproxyClient) -> MjproxyBackend:
    return MjproxyBackend(manual_client)


@pytest.mark.parametrize(("base", "speed", "expected"), [
    ("http://host:8086/mj", "fast", "http://host:8086/mj-fast/mj"),
    ("http://host:8086/mj/", "relax", "http://host:8086/mj-relax/mj"),
    ("http://host:8086/mj-relax/mj", "turbo", "http://host:8086/mj-turbo/mj"),  # replaced, not nested
    ("http://host:8086/mj-turbo/mj", "turbo", "http://host:8086/mj-turbo/mj"),
    ("https://gateway.example/api/v1/mj", "fast", "https://gateway.example/api/v1/mj-fast/mj"),
])
def test_the_speed_base_is_derived_from_the_configured_one(base: str, speed: str, expected: str) -> None:
    assert speed_base(base, speed) == expected


@pytest.mark.parametrize(("base", "speed"), [("http://host:8086/api", "fast"), ("http://host:8086/mj", "ludicrous"),
                                             ("http://host:8086/mjx", "fast")])
def test_a_base_or_speed_that_tells_no_speed_base_is_refused(base: str, speed: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        speed_base(base, speed)


async def test_a_speed_reaches_its_base_and_the_task_records_it(manual_sim: Simulator,
                                                                backend: MjproxyBackend) -> None:
    relaxed = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3, speed="relax")
    assert manual_sim.calls("submit/imagine")[-1].path == "/mj-relax/mj/submit/imagine"
    assert manual_sim.tasks[relaxed.job_id]["requestMode"] == "RELAX"
    plain = await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3)
    assert manual_sim.calls("submit/imagine")[-1].path == "/mj/submit/imagine"
    assert manual_sim.tasks[plain.job_id]["requestMode"] is None
    # Reads, like every task read, stay on the configured base: trueai finds a task by its id from any base.
    await manual_sim.complete(relaxed.job_id)
    done = await backend.get(relaxed.job_id)
    assert manual_sim.calls("/fetch")[-1].path == f"/mj/task/{relaxed.job_id}/fetch"
    assert done.status is BackendStatus.DONE and done.raw["mode"] == "RELAX"
    assert set(await backend.get_many([relaxed.job_id, plain.job_id])) == {relaxed.job_id, plain.job_id}
    await backend.cancel(plain.job_id)
    assert manual_sim.calls("/cancel")[-1].path == f"/mj/task/{plain.job_id}/cancel"


async def test_every_call_that_starts_a_job_takes_its_speed(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    grid = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    await manual_sim.complete(grid.job_id)
    upscale = await backend.press(grid.job_id, Button("U1", custom_id(manual_sim.tasks[grid.job_id], "U1")),
                                  ref="r-2", callback_url=None, max_jobs=3, speed="turbo")
    described = await backend.describe(ImagePrompt(PNG, "image/png"), ref="r-3", callback_url=None, speed="fast")
    blended = await backend.blend([ImagePrompt(PNG, "image/png")] * 2, dimensions="square", ref="r-4",
                                  callback_url=None, max_jobs=3, speed="relax")
    assert [call.path for call in manual_sim.requests if "/submit/" in call.path] == [
        "/mj/submit/imagine", "/mj-turbo/mj/submit/action", "/mj-fast/mj/submit/describe",
        "/mj-relax/mj/submit/blend"]
    assert [manual_sim.tasks[update.job_id]["requestMode"] for update in (upscale, described, blended)] == [
        "TURBO", "FAST", "RELAX"]


async def test_a_configured_speed_base_is_the_default_and_is_replaced(manual_sim: Simulator,
                                                                      session: aiohttp.ClientSession) -> None:
    relax_base = manual_sim.base_url.replace("/mj", "/mj-relax/mj")
    backend = MjproxyBackend(MjproxyClient(session, relax_base, TOKEN))
    default = await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3)
    fast = await backend.imagine("a dog", ref="r-2", callback_url=None, max_jobs=3, speed="fast")
    assert [manual_sim.tasks[update.job_id]["requestMode"] for update in (default, fast)] == ["RELAX", "FAST"]
    assert manual_sim.calls("submit/imagine")[-1].path == "/mj-fast/mj/submit/imagine"
    assert (await backend.get(fast.job_id)).job_id == fast.job_id  # read at /mj-relax/mj: any base finds it


async def test_set_speed_checks_the_base_is_served(manual_sim: Simulator, backend: MjproxyBackend) -> None:
    answer = await backend.set_speed("relax")
    assert answer.startswith("The mj-proxy offers relax mode at ") and "/mj-relax/mj" in answer
    checked = manual_sim.calls("task/list-by-condition")[-1]
    assert (checked.path, checked.body, checked.headers["mj-api-secret"]) == (
        "/mj-relax/mj/task/list-by-condition", {"ids": []}, TOKEN)
    manual_sim.speeds.discard("turbo")
    with pytest.raises(BackendError) as refused:
        await backend.set_speed("turbo")
    turbo_base = manual_sim.base_url.replace("/mj", "/mj-turbo/mj")
    assert refused.value.kind is ErrorKind.UNSUPPORTED
    assert refused.value.detail == f"the mj-proxy does not offer turbo mode at {turbo_base}"
    with pytest.raises(BackendError) as unknown:
        await backend.set_speed("ludicrous")
    assert unknown.value.kind is ErrorKind.BAD_REQUEST


async def test_a_job_at_a_base_not_served_is_unsupported_and_a_missing_parent_still_not_found(
        manual_sim: Simulator, backend: MjproxyBackend) -> None:
    manual_sim.speeds.discard("turbo")
    with pytest.raises(BackendError) as refused:
        await backend.imagine("a cat", ref="r-1", callback_url=None, max_jobs=3, speed="turbo")
    assert refused.value.kind is ErrorKind.UNSUPPORTED and "turbo mode" in refused.value.detail
    assert not manual_sim.tasks
    with pytest.raises(BackendError) as missing:  # trueai's own 404 (code 3) at a served speed base
        await backend.press("999999999999999999", Button("U1", "MJ::JOB::upsample::1::x"), ref="r-2",
                            callback_url=None, max_jobs=3, speed="fast")
    assert missing.value.kind is ErrorKind.NOT_FOUND


async def test_a_token_is_checked_at_a_speed_base_too(manual_sim: Simulator, session: aiohttp.ClientSession) -> None:
    manual_sim.speeds.clear()
    wrong = MjproxyBackend(MjproxyClient(session, manual_sim.base_url, "not-the-token"))
    with pytest.raises(BackendError) as refused:
        await wrong.set_speed("fast")  # SimpleAuthMiddleware answers before routing does
    assert refused.value.kind is ErrorKind.UNAUTHORISED


async def test_a_base_that_tells_no_speed_base_is_unsupported(session: aiohttp.ClientSession) -> None:
    odd = MjproxyBackend(MjproxyClient(session, "http://127.0.0.1:9/api", TOKEN))
    for call in (odd.set_speed("fast"), odd.imagine("a cat", ref="r", callback_url=None, max_jobs=3, speed="fast")):
        with pytest.raises(BackendError) as refused:
            await call
        assert refused.value.kind is ErrorKind.UNSUPPORTED and "does not end in /mj" in refused.value.detail
