"""Start-up: settings errors, command sync, the embedded simulator, allowed servers, buttons across restarts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, GUILD_ID, FakeDiscord, FakeGuild
from tests.harness import InProcessBot, SubprocessBot, bot_env, child_env
from tests.ports import free_port
from tests.test_walking_skeleton import button_id, is_result, labels


def run_bot_cli(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=child_env(env), capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def test_missing_token_is_one_clear_line(tmp_path: Path) -> None:
    result = run_bot_cli({}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: setting DISCORD_TOKEN is required (set it in the environment or in "
                                     f"{tmp_path / '.env'})")
    assert "Traceback" not in result.stderr


def test_malformed_setting_names_it(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "x" * 30, "USEAPI_MAX_JOBS": "lots"}
    result = run_bot_cli(env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: USEAPI_MAX_JOBS must be a whole number, got 'lots'"]
    assert "x" * 30 not in result.stderr


def test_every_bad_setting_is_one_line_and_none_is_a_traceback(tmp_path: Path) -> None:
    # LOG_LEVEL is read by the logging set-up, after the settings: it once got through and crashed there.
    (tmp_path / ".env").write_text("PORT=abc\n")
    env = {"DISCORD_TOKEN": "x" * 30, "LOG_LEVEL": "verbose", "USEAPI_MAX_JOBS": "40"}
    result = run_bot_cli(env, tmp_path)
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == [
        "error: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'verbose'",
        "error: PORT must be a whole number, got 'abc'",
        "error: USEAPI_MAX_JOBS must be between 1 and 15, got '40'",
    ]


async def test_buttons_work_after_restart_and_commands_sync_once(fake_discord: FakeDiscord, sim: Simulator,
                                                                 tmp_path: Path) -> None:
    env = bot_env(fake_discord, sim, tmp_path / "relay.db")
    first = InProcessBot(env)
    await first.start(fake_discord)
    try:
        await fake_discord.slash("imagine", {"prompt": "an old harbour"}, user=ALICE)
        grid = await fake_discord.wait_for_message(is_result(1), timeout=15)
    finally:
        await first.stop()
    assert len(fake_discord.command_syncs) == 1
    assert {c["name"] for c in fake_discord.commands[None]} == {"imagine", "describe", "blend", "button", "remix",
                                                                 "jobs", "job", "quota", "delete", "relay"}
    (relay,) = [c for c in fake_discord.commands[None] if c["name"] == "relay"]
    assert {o["name"] for o in relay["options"]} == {"remix", "speed", "reset", "admin-channel", "policy", "gallery",
                                                     "quota", "queue-limit", "purge", "status"}
    # Server-only, hidden from members without Manage Server (and checked again when run).
    assert relay["default_member_permissions"] == str(1 << 5)
    assert all(c["contexts"] == [0] for c in fake_discord.commands[None])

    second = InProcessBot(env)
    await second.start(fake_discord)
    try:
        assert len(fake_discord.command_syncs) == 1, "unchanged commands are not synced again"
        click = await fake_discord.click(int(grid["id"]), button_id(grid, "U2"), user=ALICE)
        assert (await click.wait_response())["type"] == 5
        upscale = await fake_discord.wait_for_message(is_result(2), timeout=15)
        assert "U2 of #1" in upscale["content"]
        assert [c.body["button"] for c in sim.calls("jobs/button") if c.body] == ["U2"]
        assert fake_discord.spec_errors == []
    finally:
        await second.stop()


async def test_embedded_simulator_says_results_are_simulated(fake_discord: FakeDiscord, sim: Simulator,
                                                             tmp_path: Path) -> None:
    env = bot_env(fake_discord, sim, tmp_path / "relay.db", callbacks=False)
    del env["USEAPI_TOKEN"], env["USEAPI_BASE_URL"]
    runner = InProcessBot(env)
    bot = await runner.start(fake_discord)
    try:
        assert bot.simulator is not None
        await fake_discord.slash("imagine", {"prompt": "a quiet forest"}, user=ALICE)
        working = await fake_discord.wait_for_message(lambda m: "a quiet forest" in m.get("content", ""))
        assert "Simulated" in working["content"]
        result = await fake_discord.wait_for_message(is_result(1), timeout=20)
        assert "Simulated" in result["content"]
        assert labels(result)[:4] == ["U1", "U2", "U3", "U4"]
        assert sim.requests == [], "the external simulator was not used"
    finally:
        await runner.stop()


async def test_commands_refused_outside_allowed_servers(fake_discord: FakeDiscord, sim: Simulator,
                                                        tmp_path: Path) -> None:
    other = 1000000000000000999
    fake_discord.add_guild(FakeGuild(id=other, name="elsewhere", owner_id=ALICE, channels=[1000000000000000998],
                                     roles={}, members={ALICE: []}))
    env = bot_env(fake_discord, sim, tmp_path / "relay.db", ALLOWED_GUILD_IDS=str(GUILD_ID))
    runner = InProcessBot(env)
    await runner.start(fake_discord)
    try:
        refused = await fake_discord.slash("imagine", {"prompt": "a cat"}, user=ALICE, guild_id=other,
                                           channel_id=1000000000000000998)
        answer = await refused.wait_response()
        assert answer["type"] == 4 and "not enabled for this server" in answer["data"]["content"]
        assert answer["data"]["flags"] & 64
        assert sim.calls("jobs/imagine") == []
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()


async def test_commands_in_a_dm_are_refused(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    runner = InProcessBot(bot_env(fake_discord, sim, tmp_path / "relay.db"))
    await runner.start(fake_discord)
    try:
        refused = await fake_discord.slash("imagine", {"prompt": "a cat"}, user=ALICE, dm=True)
        answer = await refused.wait_response()
        assert answer["type"] == 4 and "only inside a server" in answer["data"]["content"]
        assert sim.calls("jobs/imagine") == []
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()


async def test_long_prompt_is_shortened_in_text_but_sent_whole(fake_discord: FakeDiscord, sim: Simulator,
                                                                tmp_path: Path) -> None:
    prompt = "a very detailed cathedral " * 78  # about 2000 characters, within useapi's 2048
    prompt = prompt.strip()[:2040]
    runner = InProcessBot(bot_env(fake_discord, sim, tmp_path / "relay.db"))
    await runner.start(fake_discord)
    try:
        await fake_discord.slash("imagine", {"prompt": prompt}, user=ALICE)
        result = await fake_discord.wait_for_message(is_result(1), timeout=15)
        assert len(result["content"]) <= 2000 and "…" in result["content"]
        (call,) = sim.calls("jobs/imagine")
        assert call.body is not None and call.body["prompt"] == prompt
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()


async def test_image_over_upload_limit_is_reencoded(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    # Just over an unboosted server's 10 MiB: the bot must shrink it rather than link it.
    limit = fake_discord.guilds[GUILD_ID].filesize_limit
    big = Simulator(token="sim-token-0123456789", job_seconds=0.3, image_bytes=limit + 512 * 1024)
    await big.start()
    runner = InProcessBot(bot_env(fake_discord, big, tmp_path / "relay.db"))
    try:
        await runner.start(fake_discord)
        await fake_discord.slash("imagine", {"prompt": "static noise"}, user=ALICE)
        result = await fake_discord.wait_for_message(is_result(1), timeout=15)
        (attachment,) = result["attachments"]
        assert attachment["filename"].endswith(".jpg")
        assert attachment["size"] <= limit
        assert fake_discord.spec_errors == []
    finally:
        await runner.stop()
        await big.close()


async def test_start_and_a_job_log_no_voice_warnings_nor_simulator_access_lines(fake_discord: FakeDiscord,
                                                                                 sim: Simulator,
                                                                                 tmp_path: Path) -> None:
    # The embedded simulator (no USEAPI_TOKEN) serves inside the bot's own process, so its log is the bot's.
    env = {**bot_env(fake_discord, sim, tmp_path / "relay.db", callbacks=False), "LOG_LEVEL": "INFO"}
    del env["USEAPI_TOKEN"], env["USEAPI_BASE_URL"]
    bot = SubprocessBot(env, tmp_path / "bot.log")
    await bot.start(fake_discord)
    try:
        await fake_discord.slash("imagine", {"prompt": "a quiet log"}, user=ALICE)
        await fake_discord.wait_for_message(is_result(1), timeout=30)
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()
    log = bot.log_text()
    assert "logging in using static token" in log, "the log was captured at INFO"
    for noise in ("PyNaCl", "davey", "voice will NOT be supported", "aiohttp.access"):
        assert noise not in log, f"{noise!r} in:\n{log}"


def test_discord_unreachable_is_one_line_naming_the_url_without_secrets(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: what a machine without network gets, at once
    env = {"DISCORD_TOKEN": "x" * 30, "DISCORD_API_BASE": f"http://127.0.0.1:{closed}/api/v10",
           "DATABASE_PATH": str(tmp_path / "relay.db"), "PORT": "0", "LOG_LEVEL": "WARNING"}
    for command in ([], ["sync"]):
        result = subprocess.run([sys.executable, "-m", "bot", *command], cwd=tmp_path, env=child_env(env),
                                capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"error: cannot reach Discord's API at http://127.0.0.1:{closed}/api/v10 (Connection refused)"]

    # With JSON logs the line is one more JSON record, so a collector reading every line as JSON gets it too.
    result = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=child_env({**env, "LOG_FORMAT": "json"}),
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    (entry,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert (entry["level"], entry["logger"]) == ("ERROR", "bot")
    assert entry["message"] == f"cannot reach Discord's API at http://127.0.0.1:{closed}/api/v10 (Connection refused)"
