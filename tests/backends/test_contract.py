"""The `Backend` contract: what the relay relies on, the same for every backend, run against each one's
simulator over real sockets. A backend passes these unchanged (its rig in `rigs.py` is all it adds)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.backends.base import BackendError, BackendStatus, ImagePrompt, JobUpdate
from bot.jobs import ErrorKind
from tests.backends.rigs import RIGS, Rig

REF = "0123456789-7"
# An image the relay keeps: its bytes, and where the relay serves it (useapi takes the link, mj-proxy the bytes).
PNG = b"\x89PNG\r\n\x1a\nkept by the relay"
IMAGES = [ImagePrompt(PNG, "image/png", f"https://relay.example.org/images/{n}.png") for n in range(1, 4)]


@pytest.fixture(params=sorted(RIGS))
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async with RIGS[request.param]() as opened:
        yield opened


async def imagine(rig: Rig, prompt: str = "a lighthouse at dusk", ref: str = REF) -> JobUpdate:
    return await rig.backend.imagine(prompt, ref=ref, callback_url=f"{rig.receiver.url}/{ref}", max_jobs=3)


async def done_grid(rig: Rig, ref: str = REF) -> JobUpdate:
    started = await imagine(rig, ref=ref)
    await rig.finish(started.job_id)
    return await rig.backend.get(started.job_id)


async def test_a_grid_runs_then_is_done_with_its_media_and_buttons(rig: Rig) -> None:
    started = await imagine(rig)
    assert started.job_id and not started.is_final
    running = await rig.backend.get(started.job_id)
    assert running.status in (BackendStatus.QUEUED, BackendStatus.RUNNING)
    assert running.ref == REF

    await rig.progress(started.job_id, 40)
    assert (await rig.backend.get(started.job_id)).progress == 40

    await rig.finish(started.job_id)
    done = await rig.backend.get(started.job_id)
    assert done.status is BackendStatus.DONE and done.is_final
    names = [button.name for button in done.buttons]
    assert names[:4] == ["U1", "U2", "U3", "U4"] and "🔄" in names and "V1" in names
    assert all(button.ref for button in done.buttons)
    (image,) = [item for item in done.media if item.kind == "image"]
    async with aiohttp.ClientSession() as http, http.get(image.url) as response:
        assert response.status == 200 and (await response.read())[:4] == b"\x89PNG"


async def test_pressing_a_button_of_a_finished_job_makes_a_new_job(rig: Rig) -> None:
    grid = await done_grid(rig)
    u1 = next(button for button in grid.buttons if button.name == "U1")
    upscale = await rig.backend.press(grid.job_id, u1, ref="0123456789-8", callback_url=None, max_jobs=3)
    assert upscale.job_id != grid.job_id
    await rig.finish(upscale.job_id)
    done = await rig.backend.get(upscale.job_id)
    assert done.status is BackendStatus.DONE
    assert "Vary (Strong)" in [button.name for button in done.buttons]
    assert done.ref == "0123456789-8"


async def test_a_one_shot_button_twice_is_already_done_with_the_first_job(rig: Rig) -> None:
    grid = await done_grid(rig)
    u2 = next(button for button in grid.buttons if button.name == "U2")
    assert "U2" in rig.backend.facts.one_shot
    first = await rig.backend.press(grid.job_id, u2, ref="0123456789-8", callback_url=None, max_jobs=3)
    await rig.finish(first.job_id)
    with pytest.raises(BackendError) as again:
        await rig.backend.press(grid.job_id, u2, ref="0123456789-9", callback_url=None, max_jobs=3)
    assert again.value.kind is ErrorKind.ALREADY_DONE and again.value.job_id == first.job_id


async def test_a_prompt_goes_with_the_buttons_that_take_one(rig: Rig) -> None:
    grid = await done_grid(rig)
    u1 = next(button for button in grid.buttons if button.name == "U1")
    upscale = await rig.backend.press(grid.job_id, u1, ref="0123456789-8", callback_url=None, max_jobs=3)
    await rig.finish(upscale.job_id)
    done = await rig.backend.get(upscale.job_id)
    zoom = next(button for button in done.buttons if button.name in rig.backend.facts.needs_prompt)
    zoomed = await rig.backend.press(done.job_id, zoom, ref="0123456789-9", callback_url=None, max_jobs=3,
                                     prompt="a lighthouse at dusk --zoom 1.5")
    assert zoomed.job_id not in (grid.job_id, upscale.job_id) and not zoomed.is_final


async def test_many_jobs_are_read_at_once_and_an_unknown_one_is_left_out(rig: Rig) -> None:
    first = await imagine(rig, ref="0123456789-1")
    second = await imagine(rig, "a red fox", ref="0123456789-2")
    await rig.finish(second.job_id)
    unknown = "999999999999999999" if first.job_id.isdigit() else "job:nope-user:1-channel:2-bot:midjourney"
    found = await rig.backend.get_many([first.job_id, second.job_id, unknown])
    assert set(found) == {first.job_id, second.job_id}
    assert not found[first.job_id].is_final and found[second.job_id].status is BackendStatus.DONE


async def test_an_unknown_job_is_not_found(rig: Rig) -> None:
    unknown = "999999999999999999"
    started = await imagine(rig)
    if not started.job_id.isdigit():
        unknown = "job:nope-user:1-channel:2-bot:midjourney"
    with pytest.raises(BackendError) as missing:
        await rig.backend.get(unknown)
    assert missing.value.kind is ErrorKind.NOT_FOUND


async def test_a_job_is_found_by_its_reference_after_a_crash(rig: Rig) -> None:
    mine = await imagine(rig, ref="0123456789-41")
    other = await imagine(rig, "a red fox", ref="0123456789-42")
    found = await rig.backend.find(["0123456789-41"])
    assert set(found) == {"0123456789-41"} and found["0123456789-41"].job_id == mine.job_id
    assert await rig.backend.find(["0123456789-41"], known=[mine.job_id]) == {}
    assert other.job_id != mine.job_id


async def test_callbacks_are_read_as_hints_and_odd_bodies_refused(rig: Rig) -> None:
    started = await imagine(rig)
    await rig.progress(started.job_id, 60)
    await rig.finish(started.job_id)
    await rig.receiver.wait(lambda bodies: any(rig.backend.read_callback(b).final for b in bodies))
    hints = [rig.backend.read_callback(body) for body in rig.receiver.bodies]
    assert {hint.job_id for hint in hints} == {started.job_id}
    assert hints[-1].status is BackendStatus.DONE
    assert any(hint.progress == 60 and not hint.final for hint in hints)
    for odd in ({}, {"status": "completed"}, {"jobid": 12, "id": 12}, {"jobid": "x" * 300, "id": "x" * 300}):
        with pytest.raises(ValueError, match=r".+"):
            rig.backend.read_callback(odd)


async def test_a_running_job_can_be_cancelled(rig: Rig) -> None:
    started = await imagine(rig)
    await rig.backend.cancel(started.job_id)
    assert (await rig.backend.get(started.job_id)).status is BackendStatus.CANCELLED


async def test_a_failed_job_says_why(rig: Rig) -> None:
    started = await imagine(rig)
    await rig.fail(started.job_id)
    failed = await rig.backend.get(started.job_id)
    assert failed.status is BackendStatus.FAILED and failed.error


@pytest.mark.parametrize("kind", [ErrorKind.BUSY, ErrorKind.MODERATED])
async def test_refusals_come_as_their_kind(rig: Rig, kind: ErrorKind) -> None:
    if kind not in rig.refusable:
        pytest.fail(f"every backend can answer {kind}")
    rig.refuse_next(kind)
    with pytest.raises(BackendError) as refused:
        await imagine(rig)
    assert refused.value.kind is kind


async def test_a_wrong_token_is_unauthorised(rig: Rig) -> None:
    with pytest.raises(BackendError) as refused:
        await rig.with_token("wrong-token-0000").imagine("a cat", ref=REF, callback_url=None, max_jobs=3)
    assert refused.value.kind is ErrorKind.UNAUTHORISED
    assert "wrong-token-0000" not in str(refused.value)


async def test_an_outage_is_unavailable_and_passes(rig: Rig) -> None:
    rig.down(True)
    with pytest.raises(BackendError) as down:
        await imagine(rig)
    assert down.value.kind is ErrorKind.UNAVAILABLE
    rig.down(False)
    assert (await imagine(rig)).job_id


async def test_the_facts_the_relay_reads(rig: Rig) -> None:
    facts = rig.backend.facts
    # References are `<identity>-<job>` (under 30 characters); callback URLs carry PUBLIC_URL and the secret.
    assert facts.name and facts.label and facts.prompt_limit >= 1000 and facts.ref_limit >= 64
    assert facts.callback_limit >= 256
    assert facts.one_shot == frozenset({"U1", "U2", "U3", "U4"})
    assert "Custom Zoom" in facts.needs_prompt and "V1" in facts.remix_prompt


# ---- issue 13: describe, blend, the seed, the speed


async def test_a_finished_describe_gives_four_prompts(rig: Rig) -> None:
    started = await rig.backend.describe(IMAGES[0], ref=REF, callback_url=f"{rig.receiver.url}/{REF}")
    assert started.job_id and not started.is_final and started.prompts == ()
    await rig.finish(started.job_id)
    done = await rig.backend.get(started.job_id)
    assert done.status is BackendStatus.DONE and done.ref == REF
    assert len(done.prompts) == 4 and all(prompt.strip() for prompt in done.prompts)
    assert not any(prompt.startswith(("1\ufe0f\u20e3", "1\u20e3")) for prompt in done.prompts)


async def test_a_blend_is_a_grid_with_its_buttons(rig: Rig) -> None:
    started = await rig.backend.blend(IMAGES[:2], dimensions="portrait", ref=REF, callback_url=None, max_jobs=3)
    assert started.job_id and not started.is_final
    await rig.finish(started.job_id)
    done = await rig.backend.get(started.job_id)
    assert done.status is BackendStatus.DONE and done.prompts == ()
    assert [button.name for button in done.buttons][:4] == ["U1", "U2", "U3", "U4"]
    assert [item.kind for item in done.media] == ["image"]


async def test_a_blend_of_one_image_is_refused_before_anything_is_sent(rig: Rig) -> None:
    with pytest.raises(BackendError) as refused:
        await rig.backend.blend(IMAGES[:1], dimensions="square", ref=REF, callback_url=None, max_jobs=3)
    assert refused.value.kind is ErrorKind.BAD_REQUEST


async def test_the_seed_of_a_finished_job_is_its_digits(rig: Rig) -> None:
    grid = await done_grid(rig)
    async with rig.answering():
        seed = await rig.backend.seed(grid.job_id)
    assert seed.isdigit()
    async with rig.answering():
        assert await rig.backend.seed(grid.job_id) == seed  # a job's seed does not change


@pytest.mark.parametrize("speed", ["fast", "relax"])
async def test_set_speed_answers_in_words(rig: Rig, speed: str) -> None:
    answer = await rig.backend.set_speed(speed)
    assert speed in answer.lower()


async def test_a_speed_that_is_not_offered_is_unsupported(rig: Rig) -> None:
    if not rig.withhold_speed("turbo"):
        pytest.skip("this backend's simulator cannot withhold a speed (useapi's are the account's, answered in words)")
    with pytest.raises(BackendError) as refused:
        await rig.backend.set_speed("turbo")
    assert refused.value.kind is ErrorKind.UNSUPPORTED


async def test_every_call_that_starts_a_job_takes_a_speed(rig: Rig) -> None:
    started = await rig.backend.imagine("a lighthouse", ref=REF, callback_url=None, max_jobs=3, images=IMAGES[:1],
                                        speed="relax")
    await rig.finish(started.job_id)
    grid = await rig.backend.get(started.job_id)
    u1 = next(button for button in grid.buttons if button.name == "U1")
    pressed = await rig.backend.press(grid.job_id, u1, ref="0123456789-8", callback_url=None, max_jobs=3,
                                      speed="fast")
    assert pressed.job_id != grid.job_id and not pressed.is_final
