"""The callback listener: only useapi's own news, checked with useapi, ever reaches the channel.

Every test drives the real bot over real sockets: callbacks are plain HTTP posts to its listener, useapi is
the simulator, Discord the fake; what counts is what the store holds and what the channel shows.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, FakeDiscord
from tests.harness import InProcessBot, bot_env, database_identity, eventually
from tests.ports import free_port
from tests.resilience import (
    cards_for,
    gets_of,
    job_in_db,
    jobid_of,
    jobs_in_db,
    leaks,
    manual_simulator,
    message_snapshot,
    results_for,
    secret_from,
    wait_job,
)

ATTACKER_IMAGE = "https://attacker.example/forged.png"


@dataclass
class Running:
    """A bot with one job running at useapi (the simulator holds it until told)."""

    fake: FakeDiscord
    sim: Simulator
    runner: InProcessBot
    env: dict[str, str]
    db: Path
    secret: str
    jobid: str
    http: aiohttp.ClientSession
    identity: str

    def ref(self, job: int) -> str:
        """Job `job`'s reference in the callback path: the database's identity and the job number."""
        return f"{self.identity}-{job}"

    def url(self, ref: str | int, secret: str | None = None) -> str:
        path = self.ref(ref) if isinstance(ref, int) else ref
        return f"{self.env['PUBLIC_URL']}/callbacks/useapi/{self.secret if secret is None else secret}/{path}"

    async def post(self, url: str, body: Any = None, *, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> int:
        payload = data if data is not None else json.dumps(body).encode()
        async with self.http.post(url, data=payload, headers=headers or {"Content-Type": "application/json"}) as r:
            await r.read()
            return r.status


@asynccontextmanager
async def job_running(fake_discord: FakeDiscord, tmp_path: Path, poll_interval: float) -> AsyncIterator[Running]:
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        env = bot_env(fake_discord, sim, db, POLL_INTERVAL=str(poll_interval), PROGRESS_EDIT_SECONDS="0.05")
        runner = InProcessBot(env)
        await runner.start(fake_discord)
        try:
            await fake_discord.slash("imagine", {"prompt": "a quiet harbour"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running")
            async with aiohttp.ClientSession() as http:
                yield Running(fake_discord, sim, runner, env, db, secret_from(sim), jobid_of(sim, 1), http,
                              database_identity(db))
        finally:
            await runner.stop()


@pytest.fixture
async def running(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[Running]:
    async with job_running(fake_discord, tmp_path, 0.2) as state:
        yield state


@pytest.fixture
async def unpolled(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[Running]:
    """A running job the poller leaves alone for the length of a test: any change is the request's doing."""
    async with job_running(fake_discord, tmp_path, 60.0) as state:
        yield state


def progress_body(sim: Simulator, jobid: str, percent: int) -> dict[str, Any]:
    body = copy.deepcopy(sim.jobs[jobid])
    body.update(status="progress", content=f"**{body.get('prompt')}** - <@1308> ({percent}%) (fast)", code=200)
    return body


def forged_completion(sim: Simulator, jobid: str) -> dict[str, Any]:
    body = copy.deepcopy(sim.jobs[jobid])
    body.update(
        status="completed", code=200, buttons=["U1", "U2"], content="**a quiet harbour** - <@1308> (fast)",
        attachments=[{"url": ATTACKER_IMAGE, "proxy_url": ATTACKER_IMAGE, "filename": "forged.png",
                      "content_type": "image/png", "size": 10, "width": 1, "height": 1}],
    )
    return body


async def test_requests_without_the_secret_or_with_bad_bodies_change_nothing(unpolled: Running) -> None:
    before_rows, before_messages = jobs_in_db(unpolled.db), message_snapshot(unpolled.fake)
    gets_before = gets_of(unpolled.sim, unpolled.jobid)
    good = progress_body(unpolled.sim, unpolled.jobid, 50)
    root = unpolled.env["PUBLIC_URL"]

    assert await unpolled.post(unpolled.url(1, secret="not-the-secret"), good) == 404
    assert await unpolled.post(unpolled.url(1, secret=unpolled.secret[:-1]), good) == 404
    assert await unpolled.post(f"{root}/callbacks/useapi/1", good) == 404, "no secret at all"
    assert await unpolled.post(f"{root}/callbacks/useapi/{unpolled.secret}", good) == 404, "no job reference"
    assert await unpolled.post(f"{root}/callbacks/useapi/{unpolled.secret}/1/extra", good) == 404
    assert await unpolled.post(f"{root}/callbacks/{unpolled.secret}/1", good) == 404, "another path"
    assert await unpolled.post(f"{root}/", good) == 404
    async with unpolled.http.get(unpolled.url(1)) as response:
        assert response.status == 405

    big = json.dumps({**good, "padding": "x" * (64 * 1024)}).encode()
    assert await unpolled.post(unpolled.url(1), data=big) == 413, "over 64 KiB, with Content-Length"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 4096  # JSON allows leading whitespace: only the size is wrong here
        yield json.dumps(good).encode()

    async with unpolled.http.post(unpolled.url(1), data=chunked()) as response:
        assert response.status == 413, "over 64 KiB, chunked (no Content-Length)"

    assert await unpolled.post(unpolled.url(1), data=b'{"jobid": "x", "status": ') == 400, "malformed JSON"
    assert await unpolled.post(unpolled.url(1), data=b"\xff\xfe\x00garbage") == 400
    assert await unpolled.post(unpolled.url(1), data=b"[" * 60_000) == 400, "nested beyond the parser"
    assert await unpolled.post(unpolled.url(1), data=b"[1, 2]") == 400, "not an object"
    assert await unpolled.post(unpolled.url(1), {"status": "completed"}) == 400, "no jobid"
    assert await unpolled.post(unpolled.url(1), {**good, "status": 5}) == 400

    unknown = {**good, "jobid": "job:20240101000000000-user:1-channel:1-bot:midjourney"}
    assert await unpolled.post(unpolled.url(1), unknown) == 404, "a jobid we never submitted"
    assert await unpolled.post(unpolled.url(1), {**unknown, "status": "completed"}) == 404
    assert await unpolled.post(unpolled.url(999), good) == 404, "a job we do not have"
    assert await unpolled.post(unpolled.url("abc"), good) == 404
    assert await unpolled.post(unpolled.url("١"), good) == 404, "an Arabic-Indic digit is not a job number"
    assert await unpolled.post(unpolled.url("9" * 40), good) == 404

    await asyncio.sleep(0.3)  # anything spawned by those requests would have acted by now
    assert jobs_in_db(unpolled.db) == before_rows
    assert message_snapshot(unpolled.fake) == before_messages
    assert gets_of(unpolled.sim, unpolled.jobid) == gets_before, "nothing made the bot ask useapi"
    assert unpolled.fake.spec_errors == []


async def test_forged_completion_for_a_running_job_never_reaches_the_channel(running: Running) -> None:
    sim, fake = running.sim, running.fake
    gets_before = gets_of(sim, running.jobid)
    for _ in range(3):
        assert await running.post(running.url(1), forged_completion(sim, running.jobid)) == 202

    # The bot re-reads the job before believing the body; useapi says it is still running.
    await eventually(lambda: gets_of(sim, running.jobid) > gets_before)
    await asyncio.sleep(0.3)
    row = job_in_db(running.db, 1)
    assert row["status"] == "running" and row["published"] == 0
    assert ATTACKER_IMAGE not in (row["job_json"] or "")
    assert all(ATTACKER_IMAGE not in json.dumps(m) for m in fake.messages.values())
    assert results_for(fake, 1) == []

    # The real completion is shown, with useapi's image and buttons, not the forged ones.
    await sim.complete(running.jobid)
    await eventually(lambda: results_for(fake, 1), timeout=10)
    (result,) = results_for(fake, 1)
    labels = [c.get("label") or c.get("emoji", {}).get("name") for row in result["components"]
              for c in row["components"]]
    assert labels == sim.jobs[running.jobid]["buttons"]
    assert fake.attachment_bytes(result["attachments"][0]).startswith(b"\x89PNG")
    assert ATTACKER_IMAGE not in json.dumps(result)
    assert fake.spec_errors == []


async def test_duplicate_and_out_of_order_callbacks(running: Running) -> None:
    sim, fake = running.sim, running.fake
    p30, p60 = progress_body(sim, running.jobid, 30), progress_body(sim, running.jobid, 60)

    for _ in range(5):
        assert await running.post(running.url(1), p60) == 200
    assert await running.post(running.url(1), p30) == 200, "an older progress after a newer one"
    row = job_in_db(running.db, 1)
    assert row["progress"] == 60 and row["status"] == "running", "progress only moves forward"
    await eventually(lambda: any("60%" in m["content"] for m in cards_for(fake, 1)), timeout=5)

    await sim.complete(running.jobid)  # useapi's own callback, then the result
    await eventually(lambda: results_for(fake, 1), timeout=10)
    await wait_job(running.db, 1, lambda r: r["published"] == 1)
    (completed_body,) = [body for _, body, _ in sim.callbacks if body["status"] == "completed"]
    settled_rows, settled_messages = jobs_in_db(running.db), message_snapshot(fake)
    gets_before = gets_of(sim, running.jobid)
    edits_before = len([r for r in fake.requests if r.method == "PATCH"])

    # The same completion five more times, then a stale progress: all acknowledged, none acted on.
    for _ in range(5):
        assert await running.post(running.url(1), completed_body) == 200
    assert await running.post(running.url(1), p30) == 200
    assert await running.post(running.url(1), forged_completion(sim, running.jobid)) == 200
    await asyncio.sleep(0.5)

    assert len(results_for(fake, 1)) == 1, "published exactly once"
    assert len(cards_for(fake, 1)) == 1
    assert message_snapshot(fake) == settled_messages
    assert len([r for r in fake.requests if r.method == "PATCH"]) == edits_before, "no edit of the result"
    rows = jobs_in_db(running.db)
    assert rows[1]["status"] == "completed" and rows[1]["progress"] == 100
    assert {k: v for k, v in rows[1].items() if k != "last_event_at"} == \
        {k: v for k, v in settled_rows[1].items() if k != "last_event_at"}
    assert gets_of(sim, running.jobid) == gets_before, "a finished job is not looked up again for a repeat"
    assert fake.spec_errors == []


async def test_polling_takes_over_when_callbacks_stop(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    interval = 0.3
    async with manual_simulator() as sim:
        db = tmp_path / "relay.db"
        # useapi is told to call back where nobody listens: no callback ever arrives.
        env = bot_env(fake_discord, sim, db, POLL_INTERVAL=str(interval),
                      PUBLIC_URL=f"http://127.0.0.1:{free_port()}")
        runner = InProcessBot(env)
        await runner.start(fake_discord)
        try:
            loop = asyncio.get_running_loop()
            await fake_discord.slash("imagine", {"prompt": "a silent bell"}, user=ALICE)
            await wait_job(db, 1, lambda row: row["status"] == "running")
            accepted = loop.time()
            jobid = jobid_of(sim, 1)

            # Callbacks are expected, so the bot leaves the job alone for three poll intervals...
            await eventually(lambda: gets_of(sim, jobid) > 0, timeout=5, interval=0.01)
            assert loop.time() - accepted >= 3 * interval - 0.1, "polled before callbacks had 3 intervals"
            # ...then polls it, and a completion nobody called back about is still published.
            await sim.complete(jobid)
            assert sim.callbacks and all(status is None for _, _, status in sim.callbacks), "callbacks failed"
            await eventually(lambda: results_for(fake_discord, 1), timeout=5)
            assert len(results_for(fake_discord, 1)) == 1
            assert fake_discord.spec_errors == []
        finally:
            await runner.stop()


async def test_callback_secret_stays_out_of_logs_and_stored_json(running: Running,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await running.post(running.url(1), progress_body(running.sim, running.jobid, 40))
    await running.post(f"{running.env['PUBLIC_URL']}//callbacks/useapi/{running.secret}/1", {"jobid": "x"})
    await running.sim.complete(running.jobid)
    await eventually(lambda: results_for(running.fake, 1), timeout=10)

    access = [r.getMessage() for r in caplog.records if r.name == "bot.access"]
    assert any(f"/callbacks/useapi/***/{running.ref(1)}" in line for line in access), access
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("bot", "cogs", "discord", "aiohttp"))
            and not r.name.startswith("bot.backends.useapi.simulator")]
    assert leaks(ours, [running.secret]) == []
    for row in jobs_in_db(running.db).values():
        stored = json.loads(row["job_json"])
        assert running.secret not in row["job_json"]
        assert stored["replyUrl"].endswith(f"/callbacks/useapi/***/{running.ref(1)}")


# -- property-based fuzz of the endpoint ---------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "jobid": st.text(max_size=100) | JSON_VALUES,
        "status": st.sampled_from(["created", "started", "progress", "completed", "failed", "moderated",
                                   "cancelled", "", "COMPLETED"]) | JSON_VALUES,
        "content": st.text(max_size=60).map(lambda t: f"{t} (100%)") | JSON_VALUES,
        "attachments": JSON_VALUES,
        "buttons": JSON_VALUES,
        "replyRef": st.text(max_size=20),
        "code": JSON_VALUES,
    },
)
BODIES = st.one_of(
    st.binary(max_size=512),
    FIELDS.map(lambda d: json.dumps(d).encode()),
    st.tuples(FIELDS, st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"])).map(
        lambda pair: json.dumps(pair[0], ensure_ascii=False).encode(pair[1], errors="replace")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 70_000).map(lambda n: b"[" * n),
    st.sampled_from([64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200_000]).map(
        lambda n: (b'{"jobid": "' + b"j" * n)[:n - 2] + b'"}'),
)
ENCODINGS = st.sampled_from([None, "gzip", "deflate", "gzip-garbage", "br", "identity", "x-unknown"])
CONTENT_TYPES = st.sampled_from([None, "application/json", "text/plain", "application/json; charset=utf-16",
                                 "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str], bool]:
    """(method, path template, body, headers, chunked): {secret} is filled in by the test."""
    path = draw(st.one_of(
        st.sampled_from(["1", "2", "0", "-1", "1.0", "01", "١", "9" * 30]).map(
            lambda ref: "/callbacks/useapi/{secret}/" + ref),
        st.text(max_size=20).map(lambda ref: "/callbacks/useapi/{secret}/" + ref.replace("/", "")),
        st.text(max_size=40).map(lambda s: "/callbacks/useapi/" + s + "/1"),
        st.sampled_from(["/", "/callbacks", "/callbacks/useapi", "/callbacks/useapi/{secret}", "/healthz",
                         "/callbacks/useapi/{secret}/1/2", "//callbacks/useapi/{secret}/1"]),
    ))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"]))
    body = draw(BODIES)
    headers: dict[str, str] = {}
    content_type = draw(CONTENT_TYPES)
    if content_type:
        headers["Content-Type"] = content_type
    encoding = draw(ENCODINGS)
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "deflate":
        body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
    elif encoding == "gzip-garbage":
        headers["Content-Encoding"] = "gzip"
    elif encoding is not None:
        headers["Content-Encoding"] = encoding
    return method, path, body, headers, draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(request=requests())
async def test_fuzzed_callbacks_never_fail_the_server_nor_change_anything(
        unpolled: Running, request: tuple[str, str, bytes, dict[str, str], bool]) -> None:
    method, template, body, headers, chunked = request
    before_rows, before_messages = jobs_in_db(unpolled.db), message_snapshot(unpolled.fake)
    url = unpolled.env["PUBLIC_URL"] + template.replace("{secret}", unpolled.secret)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    data: Any = stream() if chunked else body
    try:
        async with unpolled.http.request(method, url, data=data, headers=headers,
                                        skip_auto_headers=["Content-Type"]) as response:
            await response.read()
            status = response.status
    except aiohttp.ClientOSError:
        # The server may close the connection on a body it refuses before reading it whole.
        status = 413
    assert status < 500, f"{method} {template} -> {status}"
    await asyncio.sleep(0)  # let anything the request spawned run before comparing
    assert jobs_in_db(unpolled.db) == before_rows
    assert message_snapshot(unpolled.fake) == before_messages


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(fields=FIELDS)
async def test_fuzzed_bodies_naming_the_real_job_never_finish_it(unpolled: Running, fields: dict[str, Any]) -> None:
    """Whoever has the secret and the jobid still cannot show anything useapi does not confirm."""
    body = {**fields, "jobid": unpolled.jobid,
            "attachments": [{"url": ATTACKER_IMAGE, "filename": "forged.png"}], "buttons": ["U1"]}
    status = await unpolled.post(unpolled.url(1), body)
    assert status < 500
    await asyncio.sleep(0.01)
    row = job_in_db(unpolled.db, 1)
    assert row["status"] == "running" and row["published"] == 0
    assert ATTACKER_IMAGE not in (row["job_json"] or "")
    assert results_for(unpolled.fake, 1) == []
    assert all(ATTACKER_IMAGE not in json.dumps(m) for m in unpolled.fake.messages.values())
