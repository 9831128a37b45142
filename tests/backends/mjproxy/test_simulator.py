"""The simulator keeps the mj-proxy protocol: raw HTTP against it over loopback."""

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

from bot.backends.mjproxy import MjproxyClient
from bot.backends.mjproxy.facts import GRID_BUTTONS, UPSCALE_BUTTONS
from bot.backends.mjproxy.simulator import Simulator, job_hash
from tests.backends.rigs import Receiver

from .conftest import TOKEN, custom_id, done_grid, done_upscale

AUTH = {"mj-api-secret": TOKEN}
ROOT = Path(__file__).resolve().parents[3]


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=AUTH if headers is None else headers) as response:
        text = await response.text()
        return response.status, (await response.json()) if response.content_type == "application/json" else text


async def test_auth_follows_workcontext(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/submit/imagine"
    for headers in ({}, {"mj-api-secret": "nope"}, {"Authorization": "nope", "mj-api-secret": TOKEN}):
        assert await _post(session, url, {"prompt": "x"}, headers) == (401, "Authorization header missing.")
    for headers in (AUTH, {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
        status, body = await _post(session, url, {"prompt": "x"}, headers)
        assert status == 200 and body["code"] == 1
    async with Simulator(token=None, job_seconds=None) as embedded:
        status, body = await _post(session, f"{embedded.base_url}/submit/imagine", {"prompt": "x"}, {})
        assert status == 200 and body["code"] == 1


async def test_a_task_runs_on_its_clock_and_reports_every_change(sim: Simulator, session: aiohttp.ClientSession,
                                                                receiver: Receiver) -> None:
    hook = f"{receiver.url}/r-1"
    status, made = await _post(session, f"{sim.base_url}/submit/imagine",
                               {"prompt": "a red fox", "notifyHook": hook, "state": "r-1"})
    assert status == 200 and made["code"] == 1 and made["properties"]["discordInstanceId"]
    done = await sim.wait_final(made["result"])
    await receiver.wait(lambda bodies: any(b["status"] == "SUCCESS" for b in bodies))
    assert [(b["status"], b["progress"]) for b in receiver.bodies] == [
        ("SUBMITTED", "0%"), ("IN_PROGRESS", "33%"), ("IN_PROGRESS", "67%"), ("SUCCESS", "100%")]
    assert all(b["id"] == made["result"] and b["state"] == "r-1" and b["properties"]["notifyHook"] == hook
               for b in receiver.bodies)
    assert [(b["label"] or b["emoji"]) for b in done["buttons"]] == list(GRID_BUTTONS)
    assert done["submitTime"] <= done["startTime"] <= done["finishTime"] and done["isCompleted"] is True
    for url in (receiver.bodies[1]["imageUrl"], done["imageUrl"]):  # the preview, then the result
        async with session.get(url) as response:
            assert response.status == 200 and (await response.read())[:4] == b"\x89PNG"


async def test_custom_ids_are_long_and_differ_per_task(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    first, second = [await done_grid(manual_sim, manual_client, state=f"r-{n}") for n in range(2)]
    ids = [{b["customId"] for b in manual_sim.tasks[task]["buttons"]} for task in (first, second)]
    assert not ids[0] & ids[1]
    assert custom_id(manual_sim.tasks[first], "U1") == f"MJ::JOB::upsample::1::{job_hash(first)}"
    assert all(len(value) > 50 for value in ids[0])
    upscale = await done_upscale(manual_sim, manual_client)
    assert [(b["label"] or b["emoji"]) for b in manual_sim.tasks[upscale]["buttons"]] == list(UPSCALE_BUTTONS)


async def test_a_u_button_twice_answers_21_with_the_first_upscale(manual_sim: Simulator,
                                                                 manual_client: MjproxyClient) -> None:
    grid = await done_grid(manual_sim, manual_client)
    u3 = custom_id(manual_sim.tasks[grid], "U3")
    first = await manual_client.action(grid, u3)
    again = await manual_client.action(grid, u3)
    assert (again.code, again.description, again.result) == (21, "任务已存在", first.result)
    assert again.properties["status"] == "SUBMITTED"
    await manual_sim.fail(first.result or "")
    assert (await manual_client.action(grid, u3)).code == 1  # a failed upscale does not count


async def test_custom_zoom_waits_for_its_modal(manual_sim: Simulator, manual_client: MjproxyClient,
                                               receiver: Receiver) -> None:
    upscale = await done_upscale(manual_sim, manual_client)
    zoom = custom_id(manual_sim.tasks[upscale], "Custom Zoom")
    waiting = await manual_client.action(upscale, zoom, notify_hook=f"{receiver.url}/r-9", state="r-9")
    assert (waiting.code, waiting.description) == (21, "Waiting for window confirm")
    assert waiting.properties == {"finalPrompt": "a lighthouse --v 7.0", "remix": True}
    task_id = waiting.result or ""
    assert manual_sim.tasks[task_id]["status"] == "MODAL" and manual_sim.tasks[task_id]["action"] == "ZOOM"
    sent = await manual_client.modal(task_id, "a lighthouse --zoom 1.8")
    assert (sent.code, sent.result) == (1, task_id)
    assert manual_sim.tasks[task_id]["prompt"] == "a lighthouse --zoom 1.8"
    await manual_sim.complete(task_id)
    await receiver.wait(lambda bodies: any(b["status"] == "SUCCESS" for b in bodies))
    assert [b["status"] for b in receiver.bodies] == ["SUBMITTED", "SUCCESS"]  # no callback while MODAL
    assert (await manual_client.modal(task_id, "again")).code == 4


async def test_remix_makes_v_vary_pan_and_reroll_wait(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    grid = await done_grid(manual_sim, manual_client)
    v1, u1 = custom_id(manual_sim.tasks[grid], "V1"), custom_id(manual_sim.tasks[grid], "U1")
    assert (await manual_client.action(grid, v1)).code == 1
    assert (await manual_client.action(grid, v1, enable_remix=True)).code == 21
    manual_sim.set_account_remix(True)
    for name in ("V2", "🔄"):
        assert (await manual_client.action(grid, custom_id(manual_sim.tasks[grid], name))).code == 21
    assert (await manual_client.action(grid, u1)).code == 1  # an upscale takes no prompt
    manual_sim.set_account_remix(False)
    manual_sim.strict_remix = True
    refused = await manual_client.action(grid, v1, enable_remix=True)
    assert (refused.code, refused.description) == (4, "当前账号不支持 remix，请开启 remix 功能")


async def test_the_proxy_queues_past_max_running_and_refuses_a_full_queue(session: aiohttp.ClientSession) -> None:
    async with Simulator(token=None, job_seconds=None, max_running=1, queue_size=2) as sim:
        client = MjproxyClient(session, sim.base_url, None)
        answers = [await client.imagine(f"cat {n}") for n in range(4)]
        assert [(a.code, a.properties.get("numberOfQueues")) for a in answers] == [(1, None), (22, 0), (22, 1),
                                                                                    (23, None)]
        assert answers[2].description == "排队中，前面还有1个任务" and answers[3].result is None
        first, second, third = (a.result or "" for a in answers[:3])
        assert [sim.tasks[t]["status"] for t in (first, second, third)] == ["SUBMITTED", "NOT_START", "NOT_START"]
        await sim.complete(first)
        assert sim.tasks[second]["status"] == "SUBMITTED" and sim.waiting == [third]
        assert sim.max_running_seen == 1 and len(sim.tasks) == 3
    async with Simulator(token=None, job_seconds=None, max_running=1, queue_size=0, queue_full_code=9) as trueai:
        client = MjproxyClient(session, trueai.base_url, None)
        await client.imagine("a cat")
        full = await client.imagine("a dog")
        assert (full.code, full.description) == (9, "提交失败，队列已满，请稍后重试")


async def test_a_banned_word_is_code_24_and_files_nothing(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, body = await _post(session, f"{sim.base_url}/submit/imagine", {"prompt": "a Forbidden door"})
    assert (status, body) == (200, {"code": 24, "description": "可能包含敏感词", "result": None,
                                    "properties": {"promptEn": "a Forbidden door", "bannedWord": "Forbidden"}})
    assert not sim.tasks


@pytest.mark.parametrize(("body", "code", "description"), [
    ({}, 4, "prompt不能为空"),
    ({"prompt": "  "}, 4, "prompt不能为空"),
    ({"prompt": "x", "state": "s" * 256}, 4, "State参数过长，最大255字符"),
    ({"prompt": "x", "notifyHook": "http://" + "h" * 1994}, 4, "NotifyHook参数过长，最大2000字符"),
    ({"prompt": "x", "base64Array": ["not a data url"]}, 4, "base64格式错误"),
])
async def test_imagine_validation(sim: Simulator, session: aiohttp.ClientSession, body: dict[str, Any], code: int,
                                  description: str) -> None:
    status, answer = await _post(session, f"{sim.base_url}/submit/imagine", body)
    assert (status, answer["code"], answer["description"]) == (200, code, description)
    assert not sim.tasks


async def test_action_validation(manual_sim: Simulator, manual_client: MjproxyClient,
                                 session: aiohttp.ClientSession) -> None:
    grid = await done_grid(manual_sim, manual_client)
    running = (await manual_client.imagine("a dog")).result or ""
    url = f"{manual_sim.base_url}/submit/action"
    u1 = custom_id(manual_sim.tasks[grid], "U1")
    cases: list[tuple[dict[str, Any], int, int, str]] = [
        ({"taskId": grid}, 200, 4, "参数错误"),
        ({"taskId": "123", "customId": u1}, 404, 3, "关联任务不存在或已失效"),
        ({"taskId": running, "customId": u1}, 200, 4, "关联任务状态错误"),
        ({"taskId": grid, "customId": "MJ::JOB::upsample::1::someone-else"}, 200, 4, "未知的 Action 类型"),
        ({"taskId": grid, "customId": "MJ::Nothing::1"}, 200, 4, "未知的 Action 类型"),
    ]
    for body, http, code, description in cases:
        status, answer = await _post(session, url, body)
        assert (status, answer["code"], answer["description"]) == (http, code, description)
    status, answer = await _post(session, url, {"taskId": 12, "customId": u1})
    assert (status, answer["success"], answer["code"], answer["message"]) == (200, False, -1, "参数异常")


async def test_lists_fetch_and_cancel(manual_sim: Simulator, manual_client: MjproxyClient, receiver: Receiver,
                                      session: aiohttp.ClientSession) -> None:
    ids = [(await manual_client.imagine(f"cat {n}", notify_hook=f"{receiver.url}/r")).result or "" for n in range(3)]
    async with session.get(f"{manual_sim.base_url}/task/list", headers=AUTH) as response:
        assert [task["id"] for task in await response.json()] == ids[::-1]
    async with session.get(f"{manual_sim.base_url}/task/999/fetch", headers=AUTH) as response:
        assert response.status == 204
    status, found = await _post(session, f"{manual_sim.base_url}/task/list-by-condition", {"ids": [ids[1], "9"]})
    assert status == 200 and [task["id"] for task in found] == [ids[1]]
    async with session.post(f"{manual_sim.base_url}/task/{ids[0]}/cancel", headers=AUTH) as response:
        assert (response.status, await response.read()) == (200, b"")
    await receiver.wait(lambda bodies: any(b["status"] == "FAILURE" for b in bodies))
    assert manual_sim.tasks[ids[0]]["failReason"] == "取消任务"


async def test_callbacks_drop_changes_that_are_not_newer(manual_sim: Simulator, manual_client: MjproxyClient,
                                                         receiver: Receiver) -> None:
    task_id = (await manual_client.imagine("a cat", notify_hook=f"{receiver.url}/r")).result or ""
    for percent in (40, 20, 40, 80):
        await manual_sim.progress(task_id, percent)
    await manual_sim.fail(task_id, "Banned prompt detected")
    await manual_sim.complete(task_id)  # already final: nothing more
    await receiver.wait(lambda bodies: any(b["status"] == "FAILURE" for b in bodies))
    assert [(b["status"], b["progress"]) for b in receiver.bodies] == [
        ("SUBMITTED", "0%"), ("IN_PROGRESS", "40%"), ("IN_PROGRESS", "80%"), ("FAILURE", "")]
    assert [status for _url, _body, status in manual_sim.callbacks] == [200] * 4


async def test_injected_codes_and_statuses(manual_sim: Simulator, manual_client: MjproxyClient,
                                           session: aiohttp.ClientSession) -> None:
    manual_sim.inject("submit/imagine", 23, times=2)
    for _ in range(2):
        assert (await manual_client.imagine("a cat")).code == 23
    assert (await manual_client.imagine("a cat")).code == 1
    manual_sim.inject("submit/imagine", 24)
    assert (await manual_client.imagine("grim reaper")).properties["bannedWord"] == "grim"
    for value in (500, 503):
        manual_sim.inject("task/list", value)
        async with session.get(f"{manual_sim.base_url}/task/list", headers=AUTH) as response:
            assert response.status == value
            assert response.content_type == ("application/json" if value == 500 else "text/html")
    with pytest.raises(ValueError, match="makes a task"):
        manual_sim.inject("submit/imagine", 22)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_cli_serves_until_sigterm(session: aiohttp.ClientSession) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.backends.mjproxy.simulator", "--port", str(port), "--job-seconds", "0.2",
        "--any-token", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert f"http://127.0.0.1:{port}/mj" in line.decode()
        client = MjproxyClient(session, f"http://127.0.0.1:{port}/mj", None)
        made = await client.imagine("a cat")
        assert made.code == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
