"""Secrets never reach a log, an error message or Discord: DISCORD_TOKEN, USEAPI_TOKEN, USEAPI_DISCORD and the
callback secret, through a whole working day of the relay (callbacks, forgeries, errors, an outage).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.backends.useapi.simulator import Simulator
from bot.logs import CHATTY_LOGGERS, SecretMasker, quiet_chatty_loggers
from bot.settings import Settings, SettingsError, load_settings
from tests.fakediscord import ALICE, FakeDiscord
from tests.harness import InProcessBot, SubprocessBot, bot_env, child_env, eventually
from tests.resilience import jobid_of, jobs_in_db, leaks, results_for, secret_from
from tests.test_walking_skeleton import button_id

DISCORD_TOKEN = "MTI3NzY1.discord-bot-token.Zq9xYw3RkP0aLm"
USEAPI_TOKEN = "user:1234-useapiTokenAbcdefGhijkl0123"
USEAPI_DISCORD = "discord-user-token.Xy12Ab34Cd56Ef78Gh90"


@pytest.fixture
async def fake(make_fake_discord: Callable[..., Awaitable[FakeDiscord]]) -> FakeDiscord:
    return await make_fake_discord(token=DISCORD_TOKEN)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(token=USEAPI_TOKEN, job_seconds=0.3, progress_steps=1)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


def env_for(fake: FakeDiscord, sim: Simulator, db: Path) -> dict[str, str]:
    return bot_env(fake, sim, db, USEAPI_TOKEN=USEAPI_TOKEN, USEAPI_DISCORD=USEAPI_DISCORD, POLL_INTERVAL="0.2",
                   USEAPI_BACKOFF_SECONDS="0.05", USEAPI_BACKOFF_MAX_SECONDS="0.2", PROGRESS_EDIT_SECONDS="0.05")


async def a_working_day(fake: FakeDiscord, sim: Simulator, env: dict[str, str]) -> str:
    """Every path that might print a secret: callbacks right and wrong, errors from useapi and Discord."""
    await fake.slash("imagine", {"prompt": "a harbour at dawn"}, user=ALICE)
    grid = await fake.wait_for_message(lambda m: "job #1" in m["content"] and bool(m.get("components")), timeout=15)
    secret = secret_from(sim)
    root = env["PUBLIC_URL"]
    async with aiohttp.ClientSession() as http:
        for path in (f"/callbacks/useapi/{secret}/999", f"/callbacks/useapi/{secret}x/1",
                     f"//callbacks/useapi/{secret}/1", f"/relay/callbacks/useapi/{secret}/1"):
            async with http.post(root + path, data=b"{not json") as response:
                assert response.status in (400, 404)
        body = {**sim.jobs[jobid_of(sim, 1)], "status": "completed"}
        ref = sim.jobs[jobid_of(sim, 1)]["replyRef"]
        async with http.post(f"{root}/callbacks/useapi/{secret}/{ref}", json=body) as response:
            assert response.status == 200

    # useapi refuses the token once, then is down for a moment; Discord refuses an edit.
    sim.inject("jobs/button", 401)
    click = await fake.click(int(grid["id"]), button_id(grid, "U1"), user=ALICE)
    await click.wait_response()
    await eventually(lambda: any(r["status"] == "failed" for r in jobs_in_db(Path(env["DATABASE_PATH"])).values()),
                     timeout=10)
    fake.fail_next("PATCH", r"/channels/\d+/messages/\d+", 403)
    sim.set_outage(True)
    click = await fake.click(int(grid["id"]), button_id(grid, "U2"), user=ALICE)
    await click.wait_response()
    await asyncio.sleep(0.3)
    sim.set_outage(False)
    await eventually(lambda: results_for(fake, 3), timeout=15)
    return secret


def discord_saw(fake: FakeDiscord) -> list[str]:
    """Everything the bot sent Discord: messages, edits, interaction answers and follow-ups."""
    return [json.dumps(request.json) for request in fake.requests if request.json is not None]


class Collect(logging.Handler):
    """Keeps each record's text as it was logged, before any filter of the root handler masks it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def production_logging(caplog: pytest.LogCaptureFixture) -> Iterator[Collect]:
    """caplog at DEBUG with the policy `python -m bot` applies; yields the bot's own unmasked lines."""
    caplog.set_level(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    quiet_chatty_loggers(logging.DEBUG)
    raw = Collect()
    for name in ("bot", "cogs"):
        logging.getLogger(name).addHandler(raw)
    try:
        yield raw
    finally:
        for name in ("bot", "cogs"):
            logging.getLogger(name).removeHandler(raw)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def test_no_secret_in_caplog_or_discord(fake: FakeDiscord, sim: Simulator, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture,
                                              production_logging: Collect) -> None:
    env = env_for(fake, sim, tmp_path / "relay.db")
    # The one masking filter on the handler, as `python -m bot` sets it up: first with the configured
    # secrets, then the bot's own, which also knows the callback secret it generated.
    configured = SecretMasker(Settings(_env_file=None, **env).secrets())  # type: ignore[call-arg, arg-type]
    caplog.handler.addFilter(configured)
    runner = InProcessBot(env)
    bot = await runner.start(fake)
    caplog.handler.addFilter(bot.masker)
    try:
        secret = await a_working_day(fake, sim, env)
    finally:
        await runner.stop()
        caplog.handler.removeFilter(bot.masker)
        caplog.handler.removeFilter(configured)
    secrets = [DISCORD_TOKEN, USEAPI_TOKEN, USEAPI_DISCORD, secret]

    # Whatever the filter let through, formatted as a handler would, tracebacks included. The simulator
    # stands in for useapi.net, whose own logs are not ours (it logs the replyUrl it calls).
    formatter = logging.Formatter("%(name)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records
             if not record.name.startswith("bot.backends.useapi.simulator")]
    assert leaks(lines, secrets) == []
    # The bot's own code does not lean on the filter: its lines are clean before any masking.
    ours = [line for line in production_logging.lines if not line.startswith("bot.backends.useapi.simulator")]
    assert len(ours) > 20, "the bot logged next to nothing?"
    assert leaks(ours, secrets) == []
    assert leaks(discord_saw(fake), secrets) == []
    # Stored job JSON carries the masked replyUrl only.
    for row in jobs_in_db(tmp_path / "relay.db").values():
        assert leaks([row["job_json"] or "", row["error"] or ""], secrets) == []
    assert fake.spec_errors == []


async def logged_working_day(fake: FakeDiscord, sim: Simulator, env: dict[str, str],
                             tmp_path: Path) -> tuple[str, str]:
    """A working day of `python -m bot` with `env`, stopped cleanly: its log and the callback secret it used."""
    bot = SubprocessBot(env, tmp_path / "bot.log")
    await bot.start(fake)
    try:
        secret = await a_working_day(fake, sim, env)
        assert await bot.terminate() == 0
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()
    return bot.log_text(), secret


async def test_no_secret_in_the_log_of_python_m_bot(fake: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    env = {**env_for(fake, sim, tmp_path / "relay.db"), "LOG_LEVEL": "DEBUG"}
    log, secret = await logged_working_day(fake, sim, env, tmp_path)
    assert "callbacks/useapi/***/" in log, "the access log was written, masked"
    assert leaks([log], [DISCORD_TOKEN, USEAPI_TOKEN, USEAPI_DISCORD, secret]) == []
    assert leaks(discord_saw(fake), [DISCORD_TOKEN, USEAPI_TOKEN, USEAPI_DISCORD, secret]) == []


async def test_json_logs_of_python_m_bot_are_one_object_a_line_and_masked(fake: FakeDiscord, sim: Simulator,
                                                                        tmp_path: Path) -> None:
    env = {**env_for(fake, sim, tmp_path / "relay.db"), "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    log, secret = await logged_working_day(fake, sim, env, tmp_path)
    entries = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
    assert len(entries) > 20
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["logger"] == "bot.access" and "callbacks/useapi/***/" in entry["message"] for entry in entries)
    assert leaks([log], [DISCORD_TOKEN, USEAPI_TOKEN, USEAPI_DISCORD, secret]) == []


async def test_settings_errors_and_refused_tokens_do_not_echo_secrets(fake: FakeDiscord, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, DISCORD_TOKEN=DISCORD_TOKEN, USEAPI_TOKEN=USEAPI_TOKEN, PORT="not-a-port")
    assert "PORT" in str(caught.value)
    assert leaks([str(caught.value), repr(caught.value)], [DISCORD_TOKEN, USEAPI_TOKEN]) == []

    # Discord refusing the token: the process says so in one line, without the token.
    env = child_env({"DISCORD_TOKEN": "wrong-" + DISCORD_TOKEN, "DISCORD_API_BASE": fake.api_base,
                     "DATABASE_PATH": str(tmp_path / "relay.db"), "PORT": "0", "HOST": "127.0.0.1",
                     "LOG_LEVEL": "DEBUG"})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=str(tmp_path), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "DISCORD_TOKEN" in err.decode()
    assert leaks([out.decode(), err.decode()], [DISCORD_TOKEN]) == []


def test_the_filter_masks_arguments_tracebacks_and_encoded_forms() -> None:
    masker = SecretMasker(["s3cr3t/value+1", "short"])
    logger = logging.getLogger("tests.secrets.filter")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(masker)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling %s", "https://x/cb/s3cr3t%2Fvalue%2B1/1")
        logger.warning("token=%s", "s3cr3t/value+1")
        try:
            raise RuntimeError("bad token s3cr3t/value+1")
        except RuntimeError:
            logger.exception("failed")
        logger.warning("%s %s", "only one argument")  # noqa: PLE1206 - a malformed call must not raise
    finally:
        logger.removeHandler(handler)
    text = "\n".join(handler.format(record) for record in records)
    assert "s3cr3t" not in text and "value%2B1" not in text
    assert "calling https://x/cb/***/1" in text and "token=***" in text
    assert "RuntimeError: bad token ***" in text
    # Values under 6 characters are not taken as secrets: they would mask ordinary words.
    assert masker.mask("short words") == "short words"
