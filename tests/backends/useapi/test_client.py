"""UseapiClient against the simulator over loopback: results, callbacks and every typed error."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image

from bot.backends.useapi import (
    AccountChannel,
    BadRequest,
    ButtonConflict,
    Job,
    JobNotFound,
    JobQueued,
    PaymentRequired,
    PendingModMessage,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UseapiClient,
    UseapiConnectionError,
    UseapiError,
    UseapiTimeout,
)
from bot.backends.useapi.simulator import DISCORD_429_BODY, GRID_BUTTONS, UPSCALE_BUTTONS, Simulator

from .conftest import TOKEN, Receiver


async def _fetch_png(session: aiohttp.ClientSession, url: str) -> Image.Image:
    async with session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        data = await response.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_imagine_posts_callbacks_and_completes_with_a_real_png(
    sim: Simulator, client: UseapiClient, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    job = await client.imagine("a red fox", max_jobs=3, reply_url=receiver.url, reply_ref="ref-1")

    assert job.status == "started"
    assert job.verb == "imagine"
    assert ":" in job.jobid
    assert not job.is_final
    posts = await receiver.until("completed")
    assert [p["status"] for p in posts] == ["started", "progress", "progress", "completed"]
    assert [Job.model_validate(p).progress for p in posts[1:3]] == [33, 67]
    assert all(p["replyRef"] == "ref-1" and p["code"] == 200 for p in posts)

    done = await client.get_job(job.jobid)
    assert done.is_final and done.status == "completed"
    assert done.buttons == GRID_BUTTONS
    assert done.content == "**a red fox** - <@1308> (fast)"
    assert done.progress is None
    assert done.replyUrl == receiver.url
    assert done.image_url is not None
    image = await _fetch_png(session, done.image_url)
    assert image.format == "PNG"
    assert image.size == (128, 128) == (done.attachments[0].width, done.attachments[0].height)

    sent = sim.calls("jobs/imagine")[0]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {"prompt": "a red fox", "maxJobs": 3, "replyUrl": receiver.url, "replyRef": "ref-1"}
    # The jobid carries ':' and must travel percent-encoded.
    assert sim.calls("jobs/")[-1].raw_path == "/v2/jobs/?jobid=" + quote(job.jobid, safe="")


async def test_channel_and_discord_are_sent_only_when_configured(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    configured = UseapiClient(session, sim.base_url, TOKEN, channel=sim.channel, discord="MTIzNDU2Nzg5.token")
    job = await configured.imagine("a boat", max_jobs=2)
    assert sim.calls("jobs/imagine")[-1].body == {
        "prompt": "a boat",
        "maxJobs": 2,
        "channel": sim.channel,
        "discord": "MTIzNDU2Nzg5.token",
    }
    assert job.discord == "MTI…ken"
    await sim.wait_final(job.jobid)
    await configured.button(job.jobid, "V2", max_jobs=2)
    assert sim.calls("jobs/button")[-1].body == {
        "jobid": job.jobid,
        "button": "V2",
        "maxJobs": 2,
        "discord": "MTIzNDU2Nzg5.token",
    }


async def test_u1_gives_the_upscale_set_and_a_second_u1_conflicts(
    sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession
) -> None:
    grid = await client.imagine("a lighthouse", max_jobs=3)
    await sim.wait_final(grid.jobid)

    upscale = await client.button(grid.jobid, "U1", max_jobs=3)
    assert (upscale.verb, upscale.button, upscale.parentJobId) == ("button", "U1", grid.jobid)
    assert upscale.prompt == "a lighthouse"
    await sim.wait_final(upscale.jobid)
    done = await client.get_job(upscale.jobid)
    assert done.buttons == UPSCALE_BUTTONS
    assert done.image_url is not None
    assert (await _fetch_png(session, done.image_url)).size == (256, 256)

    parent = await client.get_job(grid.jobid)
    assert [(c.button, c.jobid) for c in parent.children] == [("U1", upscale.jobid)]

    with pytest.raises(ButtonConflict) as caught:
        await client.button(grid.jobid, "U1", max_jobs=3)
    assert caught.value.status == 409
    assert caught.value.jobid == upscale.jobid
    assert caught.value.button == "U1"


ErrorCheck = dict[str, Any]


@pytest.mark.parametrize(
    ("status", "body", "expected", "fields"),
    [
        (400, None, BadRequest, {"error": "prompt is missing"}),
        (401, None, Unauthorized, {"error": "Unauthorized"}),
        (402, None, PaymentRequired, {"error": "Account has no subscription or subscription expired"}),
        (404, None, JobNotFound, {}),
        (409, {"error": "Button U2 already executed by job j:1", "button": "U2", "jobid": "j:1", "code": 409},
         ButtonConflict, {"button": "U2", "jobid": "j:1"}),
        (422, None, Unprocessable, {"job_status": "moderated", "error": "Action needed to continue"}),
        (429, None, TooManyRequests, {"queue_full": True, "retry_after": None}),
        (429, DISCORD_429_BODY, TooManyRequests, {"queue_full": False, "retry_after": 10.0, "executing_jobs": []}),
        (500, None, ServerError, {"error": "Internal Server Error"}),
        (503, None, ServerError, {"error": "Service Unavailable"}),
        (418, None, ServerError, {}),
    ],
)  # fmt: skip
async def test_injected_status_maps_to_its_exception(
    sim: Simulator,
    client: UseapiClient,
    status: int,
    body: dict[str, Any] | None,
    expected: type[UseapiError],
    fields: ErrorCheck,
) -> None:
    sim.inject("jobs/imagine", status, body)
    with pytest.raises(UseapiError) as caught:
        await client.imagine("a cat", max_jobs=3)
    error = caught.value
    assert type(error) is expected
    assert error.status == status
    for name, value in fields.items():
        assert getattr(error, name) == value, name
    # The injection is spent: the next call goes through.
    assert (await client.imagine("a cat", max_jobs=3)).status == "started"


async def test_moderated_and_invalid_prompts_answer_422(sim: Simulator, client: UseapiClient) -> None:
    with pytest.raises(Unprocessable) as caught:
        await client.imagine("something Forbidden here", max_jobs=3)
    assert caught.value.job_status == "moderated"
    assert caught.value.error_details is not None and "AI moderators" in caught.value.error_details
    assert caught.value.jobid is not None
    assert (await client.get_job(caught.value.jobid)).status == "moderated"

    with pytest.raises(Unprocessable) as caught:
        await client.imagine("a cat --badparam 3", max_jobs=3)
    assert caught.value.error == "Invalid parameter"
    assert caught.value.error_details == "Unrecognized parameter(s): `badparam`"


async def test_unknown_job_is_job_not_found(client: UseapiClient) -> None:
    with pytest.raises(JobNotFound) as caught:
        await client.get_job("job:nope-user:1-channel:2-bot:midjourney")
    assert caught.value.error == "Unable to locate job job:nope-user:1-channel:2-bot:midjourney"


async def test_504_is_job_queued_and_can_complete_later(sim: Simulator, client: UseapiClient) -> None:
    sim.inject("jobs/imagine", 504, complete_later=True)
    with pytest.raises(JobQueued) as caught:
        await client.imagine("a queued cat", max_jobs=3)
    jobid = caught.value.jobid
    assert jobid is not None
    assert caught.value.error == "Job queued"
    assert (await client.get_job(jobid)).status == "failed"
    assert jobid not in await client.executing()
    assert (await sim.wait_status(jobid, "completed"))["buttons"] == GRID_BUTTONS


async def test_596_halts_everything_until_reset(sim: Simulator, client: UseapiClient) -> None:
    grid = await client.imagine("a cat", max_jobs=3)
    await sim.wait_final(grid.jobid)
    sim.inject("jobs/button", 596)
    with pytest.raises(PendingModMessage) as caught:
        await client.button(grid.jobid, "V1", max_jobs=3)
    # The button variant carries a whole failed job.
    assert caught.value.jobid is not None
    assert caught.value.channel == sim.channel
    assert caught.value.error == "Pending mod message"

    with pytest.raises(PendingModMessage) as again:
        await client.executing()
    assert again.value.jobid is None
    assert "pending moderation message" in again.value.error
    accounts = await client.account()
    assert accounts[sim.channel].pendingModMessage

    await client.reset(sim.channel)
    assert sim.calls("account/midjourney/" + sim.channel + "/reset")[-1].method == "POST"
    assert await client.executing() == []
    assert (await client.account())[sim.channel].pendingModMessage is None


async def test_wrong_token_is_unauthorized_and_never_shown(sim: Simulator, session: aiohttp.ClientSession) -> None:
    secret = "tok-VERY-SECRET-0123456789"
    wrong = UseapiClient(session, sim.base_url, secret)
    with pytest.raises(Unauthorized) as caught:
        await wrong.executing()
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert secret not in repr(wrong)

    # Even a server that echoes the token back does not leak it through the exception.
    right = UseapiClient(session, sim.base_url, TOKEN, discord="discord-user-token-xyz")
    sim.inject("jobs/imagine", 400, {"error": f"bad {TOKEN} / discord-user-token-xyz", "code": 400})
    with pytest.raises(BadRequest) as echoed:
        await right.imagine("a cat", max_jobs=3)
    for text in (str(echoed.value), repr(echoed.value), str(echoed.value.body)):
        assert TOKEN not in text and "discord-user-token-xyz" not in text


async def test_connection_refused_is_a_connection_error(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = UseapiClient(session, f"http://127.0.0.1:{port}/v2", "tok-refused-secret", timeout=2.0)
    with pytest.raises(UseapiConnectionError) as caught:
        await client.imagine("a cat", max_jobs=3)
    assert not isinstance(caught.value, UseapiTimeout)
    assert caught.value.status == 0
    assert "tok-refused-secret" not in str(caught.value)


async def test_slow_api_is_a_timeout(session: aiohttp.ClientSession) -> None:
    async with Simulator(post_delay=1.0, job_seconds=None) as slow:
        client = UseapiClient(session, slow.base_url, TOKEN, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(UseapiTimeout) as caught:
            await client.imagine("a cat", max_jobs=3)
        assert time.monotonic() - started < 0.9
        assert isinstance(caught.value, UseapiConnectionError)
        # GETs are not delayed.
        assert await client.executing() == []


async def test_max_jobs_queue_full(manual_sim: Simulator, manual_client: UseapiClient) -> None:
    first = await manual_client.imagine("one", max_jobs=2)
    second = await manual_client.imagine("two", max_jobs=2)
    with pytest.raises(TooManyRequests) as caught:
        await manual_client.imagine("three", max_jobs=2)
    assert caught.value.queue_full
    assert caught.value.executing_jobs == [first.jobid, second.jobid]
    assert caught.value.error == "Maximum of 2 jobs executing in parallel supported"
    assert manual_sim.rejections_429 == 1
    assert await manual_client.executing() == [first.jobid, second.jobid]

    await manual_sim.complete(first.jobid)
    third = await manual_client.imagine("three", max_jobs=2)
    assert await manual_client.executing() == [second.jobid, third.jobid]
    assert manual_sim.max_executing_seen == 2


async def test_manual_mode_progress_complete_fail(
    manual_sim: Simulator, manual_client: UseapiClient, receiver: Receiver
) -> None:
    job = await manual_client.imagine("slow cat", max_jobs=3, reply_url=receiver.url)
    await asyncio.sleep(0.05)
    assert (await manual_client.get_job(job.jobid)).status == "started"

    await manual_sim.progress(job.jobid, 40)
    assert (await manual_client.get_job(job.jobid)).progress == 40
    await manual_sim.complete(job.jobid)
    statuses = [p["status"] for p in receiver.posts]
    assert statuses == ["started", "progress", "completed"]

    other = await manual_client.imagine("doomed cat", max_jobs=3, reply_url=receiver.url)
    await manual_sim.fail(other.jobid, "Midjourney said no")
    failed = await manual_client.get_job(other.jobid)
    assert (failed.status, failed.error) == ("failed", "Midjourney said no")
    assert receiver.posts[-1]["status"] == "failed"
    assert await manual_client.executing() == []


async def test_outage_answers_5xx_with_a_non_json_page(sim: Simulator, client: UseapiClient) -> None:
    sim.set_outage(True)
    with pytest.raises(ServerError) as caught:
        await client.executing()
    assert caught.value.status == 503
    assert "503 Service Unavailable" in caught.value.error
    sim.set_outage(True, status=502)
    with pytest.raises(ServerError):
        await client.imagine("a cat", max_jobs=3)
    assert sim.calls("jobs/imagine")[-1].body == {"prompt": "a cat", "maxJobs": 3}
    sim.set_outage(False)
    assert await client.executing() == []


async def test_remix_toggles(sim: Simulator, client: UseapiClient) -> None:
    on = await client.remix()
    assert sim.remix_on
    assert on.status == "completed" and on.content is not None and "Remix mode turned on" in on.content
    assert on.embeds[0]["description"] == on.content
    off = await client.remix()
    assert not sim.remix_on
    assert off.content is not None and "Remix mode turned off" in off.content


async def test_account_lists_the_channel(sim: Simulator, client: UseapiClient) -> None:
    accounts = await client.account()
    assert list(accounts) == [sim.channel]
    account = accounts[sim.channel]
    assert isinstance(account, AccountChannel)
    assert (account.channel, account.server, account.maxJobs) == (sim.channel, sim.server, 3)
    assert account.pendingModMessage is None
