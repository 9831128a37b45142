"""/imagine → grid → owner clicks U1 → upscale, through the real bot, the fake Discord and the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CHANNEL_ID, FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, bot_env, database_identity

GRID = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]


def labels(message: dict[str, Any]) -> list[str]:
    return [c.get("label") or c.get("emoji", {}).get("name") for row in message.get("components", [])
            for c in row["components"]]


def button_id(message: dict[str, Any], label: str) -> str:
    for row in message.get("components", []):
        for component in row["components"]:
            if component.get("label") == label:
                return str(component["custom_id"])
    raise AssertionError(f"no {label} button on message {message['id']}")


def is_result(job_number: int) -> Any:
    return lambda m: f"job #{job_number}" in m.get("content", "") and bool(m.get("components"))


@pytest.mark.parametrize("callbacks", [True, False], ids=["callbacks", "polling"])
async def test_imagine_then_upscale(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path,
                                    callbacks: bool) -> None:
    env = bot_env(fake_discord, sim, tmp_path / "relay.db", callbacks=callbacks)
    runner = InProcessBot(env)
    await runner.start(fake_discord)
    try:
        command = await fake_discord.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ALICE)
        ack = await command.wait_response()
        assert ack["type"] == 5, "acknowledged with a deferred response"
        assert command.ack_latency is not None and command.ack_latency < 3

        working = await fake_discord.wait_for_message(lambda m: "a lighthouse at dusk" in m.get("content", ""))
        assert working["channel_id"] == str(CHANNEL_ID)
        assert f"<@{ALICE}>" in working["content"]

        grid = await fake_discord.wait_for_message(is_result(1), timeout=15)
        assert grid["id"] == working["id"], "the working message became the result"
        assert labels(grid) == GRID
        assert len(grid["attachments"]) == 1 and grid["attachments"][0]["filename"].endswith(".png")
        assert fake_discord.attachment_bytes(grid["attachments"][0]).startswith(b"\x89PNG")

        imagine = sim.calls("jobs/imagine")
        assert len(imagine) == 1
        assert imagine[0].headers["Authorization"] == f"Bearer {SIM_TOKEN}"
        body = imagine[0].body
        assert body is not None
        assert body["prompt"] == "a lighthouse at dusk"
        assert body["maxJobs"] == 3
        # The reference carries the database's identity: a callback for a lost database's job #1 never lands here.
        identity = database_identity(tmp_path / "relay.db")
        assert body["replyRef"] == f"{identity}-1"
        if callbacks:
            assert body["replyUrl"].startswith(f"{env['PUBLIC_URL']}/callbacks/useapi/")
            assert body["replyUrl"].endswith(f"/{identity}-1")
        else:
            assert "replyUrl" not in body
        parent_jobid = next(iter(sim.jobs))

        click = await fake_discord.click(int(grid["id"]), button_id(grid, "U1"), user=ALICE)
        assert (await click.wait_response())["type"] == 5

        upscale = await fake_discord.wait_for_message(is_result(2), timeout=15)
        assert "U1 of #1" in upscale["content"]
        assert "Vary (Strong)" in labels(upscale) and "Custom Zoom" in labels(upscale)
        assert upscale["attachments"][0]["filename"].endswith(".png")

        (button_call,) = sim.calls("jobs/button")
        assert button_call.headers["Authorization"] == f"Bearer {SIM_TOKEN}"
        sent = dict(button_call.body or {})
        reply_url = sent.pop("replyUrl", None)
        assert sent == {"jobid": parent_jobid, "button": "U1", "maxJobs": 3, "replyRef": f"{identity}-2"}
        assert (reply_url is not None) == callbacks
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()


async def test_non_owner_click_is_refused_without_a_useapi_call(fake_discord: FakeDiscord, sim: Simulator,
                                                                tmp_path: Path) -> None:
    runner = InProcessBot(bot_env(fake_discord, sim, tmp_path / "relay.db"))
    await runner.start(fake_discord)
    try:
        await fake_discord.slash("imagine", {"prompt": "a red fox"}, user=ALICE)
        grid = await fake_discord.wait_for_message(is_result(1), timeout=15)
        click = await fake_discord.click(int(grid["id"]), button_id(grid, "V2"), user=BOB)
        answer = await click.wait_response()
        assert answer["type"] == 4 and answer["data"]["flags"] & 64
        assert "Only" in answer["data"]["content"]
        assert sim.calls("jobs/button") == []
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()
