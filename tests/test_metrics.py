"""GET /metrics: Prometheus text on the listener, for loopback clients or a bearer of METRICS_TOKEN."""

from __future__ import annotations

import re
from pathlib import Path
from unittest.mock import Mock

import aiohttp
from aiohttp.test_utils import make_mocked_request

from bot.backends.useapi.simulator import Simulator
from bot.webhook import metrics as metrics_handler
from tests.fakediscord import ALICE, FakeDiscord
from tests.harness import InProcessBot, bot_env
from tests.test_walking_skeleton import is_result


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_what_happened(fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    env = bot_env(fake_discord, sim, tmp_path / "relay.db", METRICS_TOKEN="metrics-secret-123")
    runner = InProcessBot(env)
    bot = await runner.start(fake_discord)
    try:
        await fake_discord.slash("imagine", {"prompt": "a counted cat"}, user=ALICE)
        await fake_discord.wait_for_message(is_result(1), timeout=15)
        async with aiohttp.ClientSession() as session, session.get(f"{env['PUBLIC_URL']}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        assert sample(text, "relay_jobs", status="completed") == 1
        assert sample(text, "relay_queue_length") == 0
        assert sample(text, "relay_slots_in_use") == 0
        assert sample(text, "relay_slots_capacity") == 3
        assert sample(text, "relay_useapi_answers_total", code="200", endpoint="jobs/imagine") == 1
        assert sample(text, "relay_callbacks_total", outcome="accepted") >= 1
        assert sample(text, "relay_results_published_total") == 1
        assert sample(text, "relay_discord_post_failures_total") == 0
        assert sample(text, "relay_ack_latency_seconds_count", kind="application_command") == 1
        assert sample(text, "relay_ack_latency_seconds_bucket", kind="application_command", le="3.0") == 1

        # Anyone else needs the bearer token: a request from a non-loopback address.
        assert bot.listener is not None
        app = bot.listener.app
        for headers, expected in (({}, 403), ({"Authorization": "Bearer wrong"}, 403),
                                  ({"Authorization": "Bearer metrics-secret-123"}, 200)):
            transport = Mock()
            transport.get_extra_info.return_value = ("203.0.113.7", 40000)
            request = make_mocked_request("GET", "/metrics", headers=headers, app=app, transport=transport)
            assert (await metrics_handler(request)).status == expected
    finally:
        await runner.stop()
