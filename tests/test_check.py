"""`python -m bot check`: one line per check, exit 0 only when all pass; Discord asked over REST for the token
and, for each server the bot serves, whether it is there with the permissions it needs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from bot.backends.useapi.simulator import Simulator
from bot.store import PostgresStore
from bot.store.sqlite.migrations import SCHEMA_VERSION
from tests.fakediscord import (
    ADMIN_ROLE_ID,
    ALICE,
    APPLICATION_ID,
    BOT_ROLE_ID,
    GUILD_ID,
    FakeDiscord,
    FakeGuild,
)
from tests.fakediscord.models import READ_MESSAGE_HISTORY, SEND_MESSAGES, VIEW_CHANNEL
from tests.harness import SIM_TOKEN, child_env
from tests.pgserver import PgServer
from tests.ports import free_port

OTHER_GUILD = 1_100_000_000_000_000_500
NEEDED = "View Channel, Send Messages, Attach Files, Embed Links, Read Message History, Add Reactions"


def run_check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "check"], cwd=cwd, env=child_env(env), capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def discord_env(fake: FakeDiscord, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": fake.token, "DISCORD_API_BASE": fake.api_base,
            "DATABASE_PATH": str(tmp_path / "relay.db"), **extra}


def prefixes(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split(":")[0] for line in result.stdout.strip().splitlines()]


async def test_check_passes_against_the_simulator(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    port = free_port()
    env = discord_env(fake_discord, tmp_path, USEAPI_TOKEN=SIM_TOKEN, USEAPI_BASE_URL=sim.base_url, HOST="127.0.0.1",
                      PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}")
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert prefixes(result) == ["ok    settings", "ok    database", "ok    useapi", "ok    discord",
                                "ok    server Test Guild (1100000000000000100)", "ok    public url"]
    assert (f"ok    database: sqlite {tmp_path / 'relay.db'}, schema version {SCHEMA_VERSION} of {SCHEMA_VERSION}, "
            "0 jobs") in result.stdout
    assert f"ok    discord: DISCORD_TOKEN logs in as mj-relay ({APPLICATION_ID})" in result.stdout
    assert f"ok    server Test Guild ({GUILD_ID}): the bot is there with {NEEDED}" in result.stdout
    # Asked over REST with the bot token, no gateway; each body checked against Discord's spec.
    assert [(r.method, r.path) for r in fake_discord.requests] == [
        ("GET", "/users/@me"), ("GET", "/users/@me/guilds"), ("GET", f"/guilds/{GUILD_ID}"),
        ("GET", f"/guilds/{GUILD_ID}/members/{APPLICATION_ID}")]
    assert all(r.headers["Authorization"] == f"Bot {fake_discord.token}" for r in fake_discord.requests)
    assert fake_discord.gateway.identifies == 0
    assert fake_discord.spec_errors == [] and fake_discord.response_errors == []
    assert SIM_TOKEN not in result.stdout + result.stderr
    assert fake_discord.token not in result.stdout + result.stderr


async def test_a_refused_discord_token_fails_the_check(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    env = {**discord_env(fake_discord, tmp_path), "DISCORD_TOKEN": "wrong-discord-token-0123456789"}
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 1
    assert "FAIL  discord: Discord refused DISCORD_TOKEN (401)" in result.stdout
    assert "server" not in result.stdout, "no server can be asked about without a token"
    assert "wrong-discord-token-0123456789" not in result.stdout + result.stderr


async def test_each_allowed_server_says_whether_the_bot_is_there_with_its_permissions(fake_discord: FakeDiscord,
                                                                                     tmp_path: Path) -> None:
    fake = fake_discord
    # The test server lets nobody attach files or add reactions, and the bot's own role adds nothing.
    guild = fake.guilds[GUILD_ID]
    guild.roles[GUILD_ID] = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY
    guild.roles[BOT_ROLE_ID] = 0
    # A second server where the bot is an administrator, and a third it was never invited to.
    fake.add_guild(FakeGuild(id=OTHER_GUILD, name="Studio", owner_id=ALICE, channels=[OTHER_GUILD + 1],
                             roles={OTHER_GUILD: 0, ADMIN_ROLE_ID: 1 << 3}, members={APPLICATION_ID: [ADMIN_ROLE_ID]}))
    missing = 1_100_000_000_000_000_999
    env = discord_env(fake, tmp_path, ALLOWED_GUILD_IDS=f"{GUILD_ID},{OTHER_GUILD},{missing}")
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"FAIL  server Test Guild ({GUILD_ID}): the bot is there but lacks Attach Files, Embed Links, " \
           "Add Reactions" in lines
    assert f"ok    server Studio ({OTHER_GUILD}): the bot is there with {NEEDED}" in lines
    assert (f"FAIL  server {missing}: the bot is not in this server: invite it (see README, Setting it up for "
            "real)") in lines
    assert ("GET", "/users/@me/guilds") not in [(r.method, r.path) for r in fake.requests], "the servers were given"
    assert fake.spec_errors == [] and fake.response_errors == []


async def test_a_bot_in_no_server_yet_fails_the_check(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    del fake_discord.guilds[GUILD_ID].members[APPLICATION_ID]  # removed from the only server it was in
    result = await _in_thread(discord_env(fake_discord, tmp_path), tmp_path)
    assert result.returncode == 1
    assert "FAIL  servers: the bot is in no server yet: invite it (see README, Setting it up for real)" in result.stdout


async def test_check_says_when_discord_cannot_be_reached(tmp_path: Path) -> None:
    closed = free_port()
    env = {"DISCORD_TOKEN": "t" * 40, "DISCORD_API_BASE": f"http://127.0.0.1:{closed}/api/v10",
           "DATABASE_PATH": str(tmp_path / "relay.db")}
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 1
    assert (f"FAIL  discord: cannot reach Discord's API at http://127.0.0.1:{closed}/api/v10 (Connection refused)"
            in result.stdout)


async def test_check_names_each_failure(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    env = discord_env(fake_discord, tmp_path, USEAPI_TOKEN="wrong-token-123", USEAPI_BASE_URL=sim.base_url,
                      HOST="127.0.0.1", PORT=str(free_port()), PUBLIC_URL=f"http://127.0.0.1:{free_port()}/nowhere")
    result = await _in_thread(env, tmp_path)
    assert result.returncode == 1
    assert "FAIL  useapi: useapi refused USEAPI_TOKEN (401)" in result.stdout
    assert "FAIL  public url:" in result.stdout
    assert "ok    database" in result.stdout
    assert "wrong-token-123" not in result.stdout + result.stderr


def test_check_names_every_bad_setting(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "t" * 40, "DATABASE_PATH": str(tmp_path / "relay.db"), "LOG_LEVEL": "verbose",
           "PORT": "abc"}
    result = run_check(env, tmp_path)
    assert result.returncode == 2
    assert sorted(result.stdout.splitlines()) == [
        "FAIL  settings: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'verbose'",
        "FAIL  settings: PORT must be a whole number, got 'abc'",
    ]


async def test_check_without_token_uses_the_embedded_simulator(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    result = await _in_thread(discord_env(fake_discord, tmp_path), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "simulated" in result.stdout
    assert "PUBLIC_URL is not set" in result.stdout


async def _in_thread(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The fakes run on this test's event loop, so the blocking subprocess waits in a thread.
    return await asyncio.to_thread(run_check, env, cwd)


def password_url(pg_server: PgServer, pg_url: str, *, password: str | None = None, port: int | None = None) -> str:
    """The test database as a role that must give its password (its owner, so it may make the schema)."""
    user, right = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    pg_server.fetch(pg_url, f"ALTER DATABASE {database} OWNER TO {user}")
    return pg_server.url(database, user=user, password=password or right, port=port)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def said(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


async def test_check_names_a_postgresql_database_with_its_password_masked(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    url = password_url(pg_server, pg_url)
    store = await PostgresStore.open(url)
    try:
        for n in range(2):
            await store.jobs.create(guild_id=GUILD_ID, channel_id=1, owner_id=ALICE, prompt=f"job {n}",
                                    backend="useapi")
    finally:
        await store.close()
    user, password = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    result = await _in_thread(discord_env(fake_discord, tmp_path, DATABASE_URL=url), tmp_path)
    assert result.returncode == 0, said(result)
    assert (f"ok    database: postgresql postgresql://{user}:***@127.0.0.1:{pg_server.port}/{database}, schema "
            f"version {SCHEMA_VERSION} of {SCHEMA_VERSION}, 2 jobs") in result.stdout.splitlines()
    assert password not in said(result) and quote(password, safe="") not in said(result)
    assert names(tmp_path) == [], "nothing made at DATABASE_PATH"


async def test_check_says_why_postgresql_cannot_be_used_without_its_password(
        fake_discord: FakeDiscord, pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    user, password = pg_server.password_user()
    database = pg_url.rsplit("/", 1)[-1]
    wrong = password + "-but-wrong"
    closed = free_port()
    cases = [
        (password_url(pg_server, pg_url, password=wrong), pg_server.port,
         f'the password was refused (password authentication failed for user "{user}")'),
        (password_url(pg_server, pg_url, port=closed), closed,
         "cannot be reached: connection refused (is the server running, on this host and port?)"),
    ]
    for url, port, reason in cases:
        result = await _in_thread(discord_env(fake_discord, tmp_path, DATABASE_URL=url), tmp_path)
        assert result.returncode == 1, said(result)
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        assert failed == [f"FAIL  database: PostgreSQL database postgresql://{user}:***@127.0.0.1:{port}/{database}: "
                          f"{reason}"]
        for secret in (password, wrong):
            assert secret not in said(result) and quote(secret, safe="") not in said(result)
    assert names(tmp_path) == []
