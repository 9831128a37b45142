"""The simulator keeps the v2 contract: raw HTTP against it over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.backends.useapi import BadRequest, ButtonConflict, Job, JobNotFound, UseapiClient
from bot.backends.useapi.simulator import GRID_BUTTONS, UPSCALE_BUTTONS, Simulator

from .conftest import TOKEN, Receiver

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=AUTH if headers is None else headers) as response:
        return response.status, await response.json()


async def _completed_grid(sim: Simulator, client: UseapiClient, prompt: str = "a cat") -> str:
    job = await client.imagine(prompt, max_jobs=3)
    await sim.wait_final(job.jobid)
    return job.jobid


async def test_auth_is_required_unless_embedded(sim: Simulator, session: aiohttp.ClientSession) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        status, body = await _post(session, f"{sim.base_url}/jobs/imagine", {"prompt": "x"}, headers)
        assert (status, body) == (401, {"error": "Unauthorized", "code": 401})
    async with Simulator(token=None, job_seconds=None) as embedded:
        status, body = await _post(session, f"{embedded.base_url}/jobs/imagine", {"prompt": "x"}, {})
        assert status == 200 and body["status"] == "started"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "prompt is missing"),
        ({"prompt": "x" * 2049}, "prompt is too long"),
        ({"prompt": "x", "replyRef": "r" * 1025}, "replyRef is too long"),
        ({"prompt": "x", "replyUrl": "http://" + "u" * 1025}, "replyUrl is too long"),
        ({"prompt": "x", "maxJobs": 16}, "maxJobs must be an integer between 1 and 15"),
        ({"prompt": "x", "maxJobs": 0}, "maxJobs must be an integer between 1 and 15"),
    ],
)
async def test_imagine_validation(
    sim: Simulator, session: aiohttp.ClientSession, body: dict[str, Any], error: str
) -> None:
    status, answer = await _post(session, f"{sim.base_url}/jobs/imagine", body)
    assert (status, answer) == (400, {"error": error, "code": 400})
    assert not sim.jobs


async def test_imagine_accepts_limits_and_defaults_max_jobs(sim: Simulator, session: aiohttp.ClientSession) -> None:
    limits = {"prompt": "p" * 2048, "replyRef": "r" * 1024}
    status, job = await _post(session, f"{sim.base_url}/jobs/imagine", limits)
    assert status == 200
    assert job["maxJobs"] == 3 and job["code"] == 200 and job["replyRef"] == "r" * 1024
    assert job["jobid"].startswith("job:") and job["jobid"].endswith(f"-channel:{sim.channel}-bot:midjourney")
    others = [await _post(session, f"{sim.base_url}/jobs/imagine", {"prompt": "q"}) for _ in range(2)]
    assert len({job["jobid"]} | {other["jobid"] for _, other in others}) == 3


async def test_button_validation(sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession) -> None:
    jobid = await _completed_grid(sim, client)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"button": "U1"}, "jobid is missing"),
        ({"jobid": jobid}, "button is missing"),
        ({"jobid": jobid, "button": "Dance"}, "button Dance not supported"),
        ({"jobid": jobid, "button": "Upscale (Subtle)"},
         f'button Upscale (Subtle) not found in job {jobid} buttons ["U1", "U2", "U3", "U4", "🔄", "V1", '
         '"V2", "V3", "V4"]'),
    ]  # fmt: skip
    for body, error in cases:
        status, answer = await _post(session, f"{sim.base_url}/jobs/button", body)
        assert (status, answer["error"]) == (400, error)

    status, answer = await _post(session, f"{sim.base_url}/jobs/button", {"jobid": "j:x", "button": "U1"})
    assert (status, answer["error"]) == (404, "Unable to locate job j:x")

    running = await client.imagine("still running", max_jobs=3)
    with pytest.raises(BadRequest):
        await client.button(running.jobid, "U1", max_jobs=3)


async def test_custom_zoom_needs_a_prompt(sim: Simulator, client: UseapiClient) -> None:
    grid = await _completed_grid(sim, client, "a tower")
    upscale = await client.button(grid, "U2", max_jobs=3)
    await sim.wait_final(upscale.jobid)
    with pytest.raises(BadRequest) as caught:
        await client.button(upscale.jobid, "Custom Zoom", max_jobs=3)
    assert caught.value.error == "prompt is missing"
    zoom = await client.button(upscale.jobid, "Custom Zoom", max_jobs=3, prompt="a tower --zoom 1.5")
    assert zoom.prompt == "a tower --zoom 1.5"
    done = await sim.wait_final(zoom.jobid)
    assert done["buttons"][:4] == ["U1", "U2", "U3", "U4"]

    upscaled = await client.button(upscale.jobid, "Upscale (Subtle)", max_jobs=3)
    assert (await sim.wait_final(upscaled.jobid))["buttons"][0] == "Redo Upscale (Subtle)"
    # Only U1..U4 are once-only: other buttons can be clicked again.
    again = await client.button(upscale.jobid, "Upscale (Subtle)", max_jobs=3)
    assert again.jobid != upscaled.jobid
    assert upscale.jobid in {c.jobid for c in (await client.get_job(grid)).children}


async def test_injected_409_points_at_the_existing_child(sim: Simulator, client: UseapiClient) -> None:
    grid = await _completed_grid(sim, client)
    child = await client.button(grid, "U3", max_jobs=3)
    sim.inject("jobs/button", 409)
    with pytest.raises(ButtonConflict) as caught:
        await client.button(grid, "U3", max_jobs=3)
    assert (caught.value.jobid, caught.value.button) == (child.jobid, "U3")


async def test_injection_counts_and_paths(sim: Simulator, client: UseapiClient) -> None:
    sim.inject("jobs/", 404, times=2)
    grid = await client.imagine("a cat", max_jobs=3)
    for _ in range(2):
        with pytest.raises(JobNotFound):
            await client.get_job(grid.jobid)
    assert (await client.get_job(grid.jobid)).jobid == grid.jobid
    assert [r.method for r in sim.calls("jobs/")] == ["GET", "GET", "GET"]
    assert [r.path for r in sim.requests] == ["/v2/jobs/imagine", "/v2/jobs/", "/v2/jobs/", "/v2/jobs/"]


async def test_callback_failures_are_recorded_and_not_retried(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/cb"
    slow = Receiver(delay=0.4)
    await slow.start()
    try:
        async with Simulator(job_seconds=None, callback_timeout=0.1) as sim:
            client = UseapiClient(session, sim.base_url, TOKEN)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await client.imagine("to nowhere", max_jobs=3, reply_url=dead_url)
            await client.imagine("to a slow one", max_jobs=3, reply_url=slow.url)
            # Answers never wait for callbacks.
            assert loop.time() - started < 0.2
            await sim.wait_callbacks(2)
            assert sorted((url, status) for url, _, status in sim.callbacks) == sorted(
                [(dead_url, None), (slow.url, None)]
            )
            await asyncio.sleep(0.1)
            assert len(sim.callbacks) == 2
    finally:
        await slow.close()


async def test_jobs_running_too_long_are_failed(session: aiohttp.ClientSession, receiver: Receiver) -> None:
    async with Simulator(job_seconds=None, stale_seconds=0.1) as sim:
        client = UseapiClient(session, sim.base_url, TOKEN)
        job = await client.imagine("stuck", max_jobs=1, reply_url=receiver.url)
        assert await client.executing() == [job.jobid]
        await asyncio.sleep(0.15)
        assert await client.executing() == []
        failed = await client.get_job(job.jobid)
        assert failed.status == "failed" and failed.error
        assert (await receiver.until("failed"))[-1]["jobid"] == job.jobid
        await client.imagine("next", max_jobs=1)


async def test_cancel_stops_an_executing_job(
    sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession
) -> None:
    job = await client.imagine("a cat", max_jobs=3)
    url = f"{sim.base_url}/jobs/cancel/?jobid={job.jobid}"
    async with session.get(url, headers=AUTH) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "cancelled"
    await asyncio.sleep(0.3)
    assert (await client.get_job(job.jobid)).status == "cancelled"


async def test_large_images_for_upload_limits(session: aiohttp.ClientSession) -> None:
    async with Simulator(job_seconds=0.05, progress_steps=0, image_bytes=400_000) as sim:
        client = UseapiClient(session, sim.base_url, TOKEN)
        job = await client.imagine("a big cat", max_jobs=3)
        done = Job.model_validate(await sim.wait_final(job.jobid))
        attachment = done.attachments[0]
        assert attachment.size is not None and 400_000 <= attachment.size < 440_000
        assert attachment.proxy_url is not None
        async with session.get(attachment.proxy_url) as response:
            assert len(await response.read()) == attachment.size


async def test_pending_mod_switch_and_account(
    sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession
) -> None:
    sim.set_pending_mod(True)
    status, body = await _post(session, f"{sim.base_url}/jobs/imagine", {"prompt": "x"})
    assert status == 596 and body["code"] == 596
    assert (await client.account())[sim.channel].pendingModMessage
    with pytest.raises(JobNotFound) as caught:
        await client.reset("42")
    assert caught.value.error == "Configuration not found for provided channel"
    await client.reset(sim.channel)
    assert not sim.pending_mod


async def test_close_cancels_running_jobs_cleanly(session: aiohttp.ClientSession, receiver: Receiver) -> None:
    sim = Simulator(job_seconds=30.0)
    await sim.start()
    client = UseapiClient(session, sim.base_url, TOKEN)
    await client.imagine("never finishes", max_jobs=3, reply_url=receiver.url)
    await sim.close()
    assert not sim.engine.tasks
    await sim.close()


async def test_module_entry_point_serves() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.backends.useapi.simulator", "--host", "127.0.0.1", "--port", str(port),
        "--job-seconds", "0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert f"http://127.0.0.1:{port}/v2" in line and "simulated" in line
        async with aiohttp.ClientSession() as session:
            client = UseapiClient(session, f"http://127.0.0.1:{port}/v2", TOKEN)
            assert await client.executing() == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_upscale_set_after_u(sim: Simulator, client: UseapiClient) -> None:
    grid = await _completed_grid(sim, client)
    upscale = await client.button(grid, "U4", max_jobs=3)
    done = await sim.wait_final(upscale.jobid)
    assert done["buttons"] == UPSCALE_BUTTONS
    assert done["content"] == "**a cat** - Image #4 <@1308>"


def _recorded(jobid: str, status: str, prompt: str, **fields: Any) -> dict[str, Any]:
    """A job body as GET jobs/?jobid= gave it to an older run (tests/upgrade/fixture.json has real ones)."""
    return {
        "jobid": jobid, "verb": "imagine", "status": status, "created": "2026-12-01T19:59:57.644Z",
        "updated": "2026-12-01T19:59:58.100Z", "prompt": prompt, "discord": "abc…xyz",
        "channel": "1100000000000000001", "server": "1000000000000000001", "maxJobs": 3,
        "messageId": "1313000000000000001", "content": f"**{prompt}** - <@1308> (Waiting to start)",
        "timestamp": "2026-12-01T19:59:57.644000+00:00", "code": 200, **fields,
    }  # fmt: skip


async def test_loaded_jobs_answer_take_buttons_and_run_until_told(
    sim: Simulator, client: UseapiClient, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    done_id = "job:20261201195957644-user:1308-channel:1100000000000000001-bot:midjourney"
    running_id = "job:20261201195958090-user:1308-channel:1100000000000000001-bot:midjourney"
    recorded = {
        done_id: _recorded(done_id, "completed", "a red lighthouse", buttons=list(GRID_BUTTONS)),
        running_id: _recorded(running_id, "progress", "a running river", replyUrl=receiver.url, replyRef="4"),
    }
    sim.load_jobs(recorded)
    assert (await client.get_job(done_id)).buttons == GRID_BUTTONS
    assert await client.executing() == [running_id]

    status, child = await _post(session, f"{sim.base_url}/jobs/button", {"jobid": done_id, "button": "U1"})
    assert status == 200 and child["parentJobId"] == done_id and child["prompt"] == "a red lighthouse"
    assert [c.jobid for c in (await client.get_job(done_id)).children] == [child["jobid"]]
    with pytest.raises(ButtonConflict):
        await client.button(done_id, "U1", max_jobs=3)
    assert "children" not in recorded[done_id], "the given bodies are copied, not kept"

    # The new job runs on the clock; the loaded one has none and runs until the test ends it.
    await sim.wait_final(child["jobid"])
    assert await client.executing() == [running_id]
    assert receiver.posts == [], "loading a job is no change to report"
    await sim.complete(running_id)
    (callback,) = await receiver.until("completed")
    assert (callback["jobid"], callback["replyRef"]) == (running_id, "4")
    assert await client.executing() == []
    async with session.get(callback["attachments"][0]["url"]) as response:
        assert response.status == 200 and response.content_type == "image/png"
