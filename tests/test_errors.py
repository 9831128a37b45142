"""One error chain: a command that fails after it was acknowledged still answers, as every command does."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bot.backends.useapi.simulator import Simulator
from cogs.errors import GENERAL_FAILURE
from tests.fakediscord import ALICE, EPHEMERAL, FakeDiscord, InteractionRecord
from tests.harness import InProcessBot, bot_env


async def answer(record: InteractionRecord) -> str:
    first = await record.wait_response()
    if first["type"] == 4:
        assert first["data"]["flags"] & EPHEMERAL
        return str(first["data"]["content"])
    message = await record.wait_followup()
    assert message["flags"] & EPHEMERAL
    return str(message["content"])


async def test_commands_that_fail_after_the_defer_say_so(fake_discord: FakeDiscord, sim: Simulator,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    runner = InProcessBot(bot_env(fake_discord, sim, db))
    await runner.start(fake_discord)
    try:
        # A damaged database: every command that reads it fails half-way.
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("DROP TABLE user_settings")
            conn.execute("DROP TABLE jobs")
            conn.commit()
        imagine = await fake_discord.slash("imagine", {"prompt": "a lighthouse"}, user=ALICE)
        assert (await imagine.wait_response())["type"] == 5, "acknowledged first"
        assert await answer(imagine) == GENERAL_FAILURE
        button = await fake_discord.slash("button", {"jobid": "1", "button": "U1"}, user=ALICE)
        assert await answer(button) == GENERAL_FAILURE
        remix = await fake_discord.slash("remix", {"state": "on"}, user=ALICE)
        assert await answer(remix) == GENERAL_FAILURE
        assert sim.calls("jobs/") == []
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()
