"""describe, blend, seed_async and the speed commands over loopback: the exact bodies useapi receives, what the
simulator answers, and what UseapiBackend makes of it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bot.backends.base import BackendError, BackendStatus, ImagePrompt
from bot.backends.replies import described_prompts
from bot.backends.useapi import JobNotFound, Unprocessable, UseapiClient
from bot.backends.useapi.backend import UseapiBackend
from bot.backends.useapi.simulator import GRID_BUTTONS, Simulator
from bot.backends.useapi.simulator.results import seed_of
from bot.jobs import ErrorKind

from .conftest import TOKEN, Receiver

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAT = "https://relay.example.org/images/cat.png"
DOG = "https://relay.example.org/images/dog.png"


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=AUTH) as response:
        return response.status, await response.json()


def _image(url: str | None) -> ImagePrompt:
    return ImagePrompt(b"\x89PNG kept", "image/png", url)


@pytest.fixture
def backend(manual_client: UseapiClient) -> UseapiBackend:
    return UseapiBackend(manual_client, seed_poll=0.02, seed_timeout=3.0)


async def _done_grid(sim: Simulator, client: UseapiClient) -> str:
    job = await client.imagine("a lighthouse", max_jobs=3)
    await sim.complete(job.jobid)
    return job.jobid


# ---- the bodies useapi receives


async def test_describe_sends_the_link_and_the_reply_fields(manual_sim: Simulator, session: aiohttp.ClientSession,
                                                            receiver: Receiver) -> None:
    client = UseapiClient(session, manual_sim.base_url, TOKEN, channel=manual_sim.channel, discord="dsc-token-1")
    job = await client.describe(CAT, reply_url=receiver.url, reply_ref="r-1")
    assert manual_sim.calls("jobs/describe")[-1].body == {
        "describeUrl": CAT, "channel": manual_sim.channel, "discord": "dsc-token-1", "replyUrl": receiver.url,
        "replyRef": "r-1"}
    assert (job.verb, job.status, job.describeUrl, job.maxJobs) == ("describe", "started", CAT, 3)


async def test_blend_seed_and_speed_bodies(manual_sim: Simulator, manual_client: UseapiClient) -> None:
    await manual_client.blend([CAT, DOG], dimensions="Portrait", max_jobs=2, reply_ref="r-2")
    assert manual_sim.calls("jobs/blend")[-1].body == {"blendUrls": [CAT, DOG], "blendDimensions": "Portrait",
                                                       "maxJobs": 2, "replyRef": "r-2"}
    grid = await _done_grid(manual_sim, manual_client)
    await manual_client.seed(grid)
    assert manual_sim.calls("jobs/seed_async")[-1].body == {"jobid": grid}
    await manual_client.set_speed("relax")
    assert manual_sim.calls("jobs/relax")[-1].body == {}  # as for remix: no channel or discord configured


async def test_the_backend_sends_links_shapes_and_no_speed(manual_sim: Simulator, backend: UseapiBackend) -> None:
    started = await backend.blend([_image(CAT), _image(DOG), _image(CAT)], dimensions="landscape", ref="r-3",
                                  callback_url="http://127.0.0.1:9/hook", max_jobs=3, speed="relax")
    assert manual_sim.calls("jobs/blend")[-1].body == {
        "blendUrls": [CAT, DOG, CAT], "blendDimensions": "Landscape", "maxJobs": 3,
        "replyUrl": "http://127.0.0.1:9/hook", "replyRef": "r-3"}
    assert started.status is BackendStatus.RUNNING and started.ref == "r-3"
    await backend.describe(_image(CAT), ref="r-4", callback_url=None, speed="turbo")
    assert manual_sim.calls("jobs/describe")[-1].body == {"describeUrl": CAT, "replyRef": "r-4"}
    await backend.imagine("a cat", ref="r-5", callback_url=None, max_jobs=3, images=[_image(DOG)], speed="fast")
    assert manual_sim.calls("jobs/imagine")[-1].body == {"prompt": f"{DOG} a cat", "maxJobs": 3, "replyRef": "r-5"}
    assert not manual_sim.calls("jobs/fast")  # a call's speed is useapi's account setting, not sent with it


@pytest.mark.parametrize(("images", "dimensions", "field"), [
    ([_image(CAT)], "square", "blendUrls"),
    ([_image(CAT)] * 6, "square", "blendUrls"),
    ([_image(CAT), _image(None)], "square", "blendUrls"),
    ([_image(CAT), _image(DOG)], "wide", "blendDimensions"),
])
async def test_a_blend_useapi_would_refuse_is_refused_before_sending(
        manual_sim: Simulator, backend: UseapiBackend, images: list[ImagePrompt], dimensions: str,
        field: str) -> None:
    with pytest.raises(BackendError) as refused:
        await backend.blend(images, dimensions=dimensions, ref="r", callback_url=None, max_jobs=3)
    assert (refused.value.kind, refused.value.field_name) == (ErrorKind.BAD_REQUEST, field)
    assert not manual_sim.calls("jobs/blend")


async def test_describe_without_a_link_is_refused_in_words(manual_sim: Simulator, backend: UseapiBackend) -> None:
    with pytest.raises(BackendError) as refused:
        await backend.describe(_image(None), ref="r", callback_url=None)
    assert refused.value.kind is ErrorKind.BAD_REQUEST and "only from a link" in refused.value.detail
    assert not manual_sim.calls("jobs/describe")


# ---- what the simulator answers


@pytest.mark.parametrize(("path", "body", "error"), [
    ("describe", {}, "describeUrl is missing"),
    ("describe", {"describeUrl": "not a link"}, "describeUrl must be a valid URL"),
    ("describe", {"describeUrl": CAT, "replyRef": "r" * 1025}, "replyRef is too long"),
    ("blend", {}, "blendUrls is missing"),
    ("blend", {"blendUrls": [CAT]}, "blendUrls must be 2 to 5 image links"),
    ("blend", {"blendUrls": [CAT] * 6}, "blendUrls must be 2 to 5 image links"),
    ("blend", {"blendUrls": [CAT, "ftp://x/y.png"]}, "blendUrls must be valid URLs"),
    ("blend", {"blendUrls": [CAT, DOG], "blendDimensions": "PORTRAIT"},
     "blendDimensions must be one of Portrait, Square, Landscape"),
    ("blend", {"blendUrls": [CAT, DOG], "maxJobs": 16}, "maxJobs must be an integer between 1 and 15"),
    ("seed_async", {}, "jobid is missing"),
])
async def test_the_new_routes_check_their_bodies(sim: Simulator, session: aiohttp.ClientSession, path: str,
                                                 body: dict[str, Any], error: str) -> None:
    assert await _post(session, f"{sim.base_url}/jobs/{path}", body) == (400, {"error": error, "code": 400})
    assert not sim.jobs


async def test_a_describe_finishes_with_four_numbered_prompts(sim: Simulator, client: UseapiClient,
                                                              receiver: Receiver) -> None:
    job = await client.describe(CAT, reply_url=receiver.url)
    posts = await receiver.until("completed")
    assert [post["status"] for post in posts] == ["started", "completed"]  # no percentages while it describes
    done = await client.get_job(job.jobid)
    (embed,) = done.embeds
    assert embed["image"] == {"url": CAT} and not done.buttons and not done.content
    assert embed["description"].startswith("1\ufe0f\u20e3 ") and "\n\n4\ufe0f\u20e3 " in embed["description"]
    assert len(described_prompts(embed["description"])) == 4


async def test_a_blend_is_a_grid_whose_prompt_is_its_links(manual_sim: Simulator, manual_client: UseapiClient,
                                                           session: aiohttp.ClientSession) -> None:
    job = await manual_client.blend([CAT, DOG], dimensions="Landscape", max_jobs=3)
    assert job.prompt == f"{CAT} {DOG} --ar 3:2"
    assert (job.blendUrls, job.blendDimensions) == ([CAT, DOG], "Landscape")
    await manual_sim.complete(job.jobid)
    done = await manual_client.get_job(job.jobid)
    assert done.buttons == GRID_BUTTONS and done.image_url is not None
    async with session.get(done.image_url) as response:
        assert (await response.read())[:4] == b"\x89PNG"
    square = await manual_client.blend([CAT, DOG], dimensions=None, max_jobs=3)
    assert square.prompt == f"{CAT} {DOG}" and "blendDimensions" not in manual_sim.jobs[square.jobid]


async def test_blend_and_describe_count_against_max_jobs_and_are_moderated(
        manual_sim: Simulator, manual_client: UseapiClient, session: aiohttp.ClientSession) -> None:
    await manual_client.blend([CAT, DOG], dimensions="Square", max_jobs=1)
    status, full = await _post(session, f"{manual_sim.base_url}/jobs/describe", {"describeUrl": CAT, "maxJobs": 1})
    assert (status, len(full["executingJobs"])) == (429, 1)
    for job in manual_sim.executing():
        await manual_sim.complete(job)
    with pytest.raises(Unprocessable) as moderated:
        await manual_client.describe("https://relay.example.org/forbidden.png")
    assert moderated.value.jobid is not None
    assert manual_sim.jobs[moderated.value.jobid]["verb"] == "describe"


async def test_seed_async_completes_with_the_seed_of_the_job_asked_about(
        sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession) -> None:
    grid = await client.imagine("a lighthouse", max_jobs=3)
    status, refused = await _post(session, f"{sim.base_url}/jobs/seed_async", {"jobid": grid.jobid})
    assert (status, refused["error"]) == (400, f"job {grid.jobid} is started, only completed jobs have a seed")
    assert len(sim.jobs) == 1
    await sim.wait_final(grid.jobid)
    job = await client.seed(grid.jobid)
    assert (job.verb, job.status, job.parentJobId) == ("seed_async", "started", grid.jobid)
    done = await sim.wait_final(job.jobid)
    assert done["status"] == "completed" and f"**seed** {seed_of(grid.jobid)}" in done["content"]
    assert not (await client.get_job(grid.jobid)).children  # a seed job is no child of the grid
    with pytest.raises(JobNotFound):
        await client.seed("job:nope-user:1-channel:2-bot:midjourney")


async def test_speed_commands_answer_completed_and_are_remembered(sim: Simulator, client: UseapiClient) -> None:
    assert sim.speed == "fast"
    for speed, words in (("relax", "Relax mode turned on!"), ("turbo", "Turbo mode turned on!"),
                         ("fast", "Fast mode turned on!")):
        job = await client.set_speed(speed)
        assert (job.verb, job.status, sim.speed) == (speed, "completed", speed)
        assert job.content is not None and job.content.startswith(words)
        assert job.embeds == [{"type": "rich", "description": job.content}]


# ---- what the backend makes of it


async def test_the_backend_reads_the_prompts_of_a_finished_describe(manual_sim: Simulator,
                                                                    backend: UseapiBackend) -> None:
    started = await backend.describe(_image(CAT), ref="r-1", callback_url=None)
    assert started.prompts == () and not started.is_final
    await manual_sim.complete(started.job_id)
    done = await backend.get(started.job_id)
    assert done.status is BackendStatus.DONE and len(done.prompts) == 4
    assert all(prompt and not prompt.startswith(("1", "2", "3", "4")) for prompt in done.prompts)
    assert done.prompts[0].endswith("--ar 1:1")


async def test_the_backend_waits_for_the_seed_job(manual_sim: Simulator, backend: UseapiBackend) -> None:
    grid = await _done_grid(manual_sim, backend.client)
    asking = asyncio.create_task(backend.seed(grid))
    await manual_sim.engine.wait_until(lambda: any(job.get("verb") == "seed_async" for job in manual_sim.jobs.values()),
                                       timeout=3.0)
    (seed_job,) = [jobid for jobid, job in manual_sim.jobs.items() if job.get("verb") == "seed_async"]
    await asyncio.sleep(0.1)
    assert not asking.done() and len(manual_sim.calls("jobs/")) >= 2  # polling
    await manual_sim.complete(seed_job)
    assert await asking == str(seed_of(grid))


async def test_a_seed_that_does_not_come_or_fails_says_so(manual_sim: Simulator, manual_client: UseapiClient) -> None:
    grid = await _done_grid(manual_sim, manual_client)
    impatient = UseapiBackend(manual_client, seed_poll=0.02, seed_timeout=0.2)
    with pytest.raises(BackendError) as waited:
        await impatient.seed(grid)
    assert waited.value.kind is ErrorKind.TIMED_OUT and "0.2 s" in waited.value.detail
    asking = asyncio.create_task(impatient.seed(grid))
    await manual_sim.engine.wait_until(lambda: len(manual_sim.executing()) == 2, timeout=3.0)
    await manual_sim.fail(manual_sim.executing()[-1], "Midjourney could not send the seed")
    with pytest.raises(BackendError) as failed:
        await asking
    assert failed.value.kind is ErrorKind.JOB_FAILED and "could not send the seed" in failed.value.detail


async def test_set_speed_answers_midjourneys_words(manual_sim: Simulator, backend: UseapiBackend) -> None:
    assert (await backend.set_speed("relax")).startswith("Relax mode turned on!")
    assert manual_sim.speed == "relax"
    with pytest.raises(BackendError) as unknown:
        await backend.set_speed("ludicrous")
    assert unknown.value.kind is ErrorKind.BAD_REQUEST and not manual_sim.calls("jobs/ludicrous")
