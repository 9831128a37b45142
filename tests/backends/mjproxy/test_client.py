"""MjproxyClient against the simulator over loopback: bodies, auth headers, typed errors, the token kept out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.backends.mjproxy import (
    MjproxyClient,
    MjproxyConnectionError,
    MjproxyError,
    MjproxyTimeout,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from bot.backends.mjproxy.simulator import Simulator

from .conftest import TOKEN, custom_id, done_grid


async def test_imagine_sends_the_dto_and_the_token_in_both_headers(manual_sim: Simulator,
                                                                  manual_client: MjproxyClient) -> None:
    made = await manual_client.imagine("a red fox", notify_hook="http://127.0.0.1:9/hook", state="ref-1")
    assert (made.code, made.description) == (1, "提交成功")
    assert made.result is not None and made.result.isdigit() and len(made.result) == 16
    sent = manual_sim.calls("submit/imagine")[-1]
    assert sent.body == {"prompt": "a red fox", "notifyHook": "http://127.0.0.1:9/hook", "state": "ref-1"}
    assert sent.headers["mj-api-secret"] == TOKEN and sent.headers["Authorization"] == TOKEN


async def test_the_bearer_scheme_and_a_client_without_a_token(manual_sim: Simulator,
                                                              session: aiohttp.ClientSession) -> None:
    bearer = MjproxyClient(session, manual_sim.base_url, TOKEN, auth_scheme="bearer")
    await bearer.imagine("a boat")
    assert manual_sim.calls("submit/imagine")[-1].headers["Authorization"] == f"Bearer {TOKEN}"

    bare = MjproxyClient(session, manual_sim.base_url, None)
    with pytest.raises(Unauthorized) as refused:
        await bare.imagine("a boat")
    headers = manual_sim.calls("submit/imagine")[-1].headers
    assert "Authorization" not in headers and "mj-api-secret" not in headers
    assert (refused.value.status, refused.value.words) == (401, "Authorization header missing.")
    async with Simulator(token=None, job_seconds=None) as embedded:
        assert (await MjproxyClient(session, embedded.base_url, None).imagine("a boat")).code == 1


async def test_trueai_compares_the_whole_authorization_header(session: aiohttp.ClientSession) -> None:
    async with Simulator(token=TOKEN, job_seconds=None, accept_bearer=False) as strict:
        assert (await MjproxyClient(session, strict.base_url, TOKEN).imagine("a cat")).code == 1
        with pytest.raises(Unauthorized):
            await MjproxyClient(session, strict.base_url, TOKEN, auth_scheme="bearer").imagine("a cat")


async def test_a_wrong_token_is_401_text_and_never_echoed(manual_sim: Simulator,
                                                          session: aiohttp.ClientSession) -> None:
    wrong = MjproxyClient(session, manual_sim.base_url, "wrong-secret-0001")
    with pytest.raises(Unauthorized) as refused:
        await wrong.fetch("1")
    assert "wrong-secret-0001" not in str(refused.value) and "wrong-secret-0001" not in repr(wrong)
    # A proxy that repeats the token in its error text is redacted too.
    manual_sim.inject("submit/imagine", 400, {"message": f"token {TOKEN} is not allowed here"})
    client = MjproxyClient(session, manual_sim.base_url, TOKEN)
    with pytest.raises(MjproxyError) as echoed:
        await client.imagine("a cat")
    assert TOKEN not in str(echoed.value) and "[redacted]" in echoed.value.words


async def test_ids_may_come_as_numbers(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    manual_sim.inject("submit/imagine", 1, {"code": 1, "description": "ok", "result": 1722480000123456})
    assert (await manual_client.imagine("a cat")).result == "1722480000123456"
    grid = await done_grid(manual_sim, manual_client)
    manual_sim.tasks[grid]["id"] = int(grid)  # as some gateways write it
    fetched = await manual_client.fetch(grid)
    assert fetched.id == grid and fetched.status == "SUCCESS"


async def test_many_tasks_are_read_in_one_request(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    ids = [(await manual_client.imagine(f"cat {n}")).result or "" for n in range(3)]
    found = await manual_client.list_by_condition([*ids, "999999999999999999"])
    assert sorted(task.id for task in found) == sorted(ids)
    (sent,) = manual_sim.calls("task/list-by-condition")
    assert sent.body == {"ids": [*ids, "999999999999999999"]}
    latest = await manual_client.latest()
    assert [task.id for task in latest] == ids[::-1]


async def test_an_unknown_task_is_not_found(manual_client: MjproxyClient) -> None:
    with pytest.raises(NotFound):
        await manual_client.fetch("999999999999999999")  # trueai answers 204, no body
    with pytest.raises(NotFound) as missing:
        await manual_client.action("999999999999999999", "MJ::JOB::upsample::1::x")
    assert (missing.value.status, missing.value.code, missing.value.words) == (404, 3, "关联任务不存在或已失效")


async def test_press_modal_and_cancel(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    grid = await done_grid(manual_sim, manual_client)
    waiting = await manual_client.action(grid, custom_id(manual_sim.tasks[grid], "V2"), state="r-5",
                                         enable_remix=True)
    assert waiting.code == 21 and waiting.result is not None
    assert manual_sim.calls("submit/action")[-1].body == {
        "taskId": grid, "customId": custom_id(manual_sim.tasks[grid], "V2"), "state": "r-5", "enableRemix": True}
    sent = await manual_client.modal(waiting.result, "a lighthouse, stormy", mask_base64="data:image/png;base64,AAAA")
    assert (sent.code, sent.result) == (1, waiting.result)
    assert manual_sim.calls("submit/modal")[-1].body == {"taskId": waiting.result, "prompt": "a lighthouse, stormy",
                                                         "maskBase64": "data:image/png;base64,AAAA"}
    await manual_client.cancel(waiting.result)
    assert (await manual_client.fetch(waiting.result)).failReason == "取消任务"


async def test_outages_rate_limits_and_odd_answers(manual_sim: Simulator, manual_client: MjproxyClient) -> None:
    manual_sim.set_outage(True, status=502)
    with pytest.raises(ServerError) as down:
        await manual_client.latest()
    assert (down.value.status, down.value.words) == (502, "502 Bad Gateway")
    manual_sim.set_outage(False)
    manual_sim.inject("task/list", 429)
    with pytest.raises(RateLimited):
        await manual_client.latest()
    manual_sim.inject("task/list", 200, {"not": "a list"})
    with pytest.raises(ServerError, match="did not answer a list"):
        await manual_client.latest()


async def test_the_observer_hears_every_call(manual_sim: Simulator, session: aiohttp.ClientSession) -> None:
    heard: list[tuple[str, int]] = []
    client = MjproxyClient(session, manual_sim.base_url, TOKEN, observer=lambda *seen: heard.append(seen))
    made = await client.imagine("a cat")
    await client.fetch(made.result or "")
    with pytest.raises(NotFound):
        await client.fetch("42")
    await client.cancel(made.result or "")
    assert heard == [("submit/imagine", 200), ("task/fetch", 200), ("task/fetch", 204), ("task/cancel", 200)]


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_timeouts_and_refused_connections(silent_port: int, session: aiohttp.ClientSession) -> None:
    heard: list[tuple[str, int]] = []
    slow = MjproxyClient(session, f"http://127.0.0.1:{silent_port}/mj", TOKEN, timeout=0.3,
                         observer=lambda *seen: heard.append(seen))
    with pytest.raises(MjproxyTimeout) as timed_out:
        await slow.imagine("a cat")
    assert timed_out.value.status == 0 and TOKEN not in str(timed_out.value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    refused = MjproxyClient(session, f"http://127.0.0.1:{closed_port}/mj", TOKEN, timeout=2.0)
    with pytest.raises(MjproxyConnectionError) as unreachable:
        await refused.latest()
    assert not isinstance(unreachable.value, MjproxyTimeout) and unreachable.value.status == 0
    assert heard == [("submit/imagine", 0)]


async def test_a_page_that_is_not_json_asks_for_the_api_root(manual_sim: Simulator,
                                                             manual_client: MjproxyClient) -> None:
    manual_sim.inject("task/list", 200)  # a 200 with text, as the proxy's web console answers off /mj
    with pytest.raises(ServerError, match="ending in /mj"):
        await manual_client.latest()
