"""/relay speed and /job's seed on both backends: what each backend is asked (useapi: the account's jobs/relax;
mj-proxy: the speed's own base for this server's next jobs), and the seed asked once and then kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from tests.backend_sims import BotSim, MjproxySim, UseapiSim, job_soon
from tests.fakediscord import ALICE, BOB, OWNER, FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, eventually
from tests.test_buttons import card, private


def paths(sim: BotSim, suffix: str) -> list[str]:
    return [call.path for call in sim.sim.requests if call.path.endswith(suffix)]  # type: ignore[attr-defined]


async def test_speed_is_set_and_the_next_jobs_run_at_it(fake_discord: FakeDiscord, backend: BotSim,
                                                        tmp_path: Path) -> None:
    fake = fake_discord
    async with InProcessBot(backend.env(fake, tmp_path / "relay.db")).running(fake):
        refused = await private(await fake.slash("relay", {"speed": "relax"}, subcommand="speed", user=BOB))
        assert "server" in refused.lower() and "relax" not in paths(backend, "relax")
        answer = await private(await fake.slash("relay", {"speed": "relax"}, subcommand="speed", user=OWNER))
        assert "Midjourney's speed is now **relax**" in answer
        await fake.slash("imagine", {"prompt": "a slow fox"}, user=ALICE)
        await job_soon(backend, 1)
        status = await private(await fake.slash("relay", subcommand="status", user=OWNER))
        assert "speed relax" in status
        if isinstance(backend, UseapiSim):
            assert paths(backend, "jobs/relax") == ["/v2/jobs/relax"]
            assert "whole useapi account" in answer
        else:
            assert isinstance(backend, MjproxySim)
            assert paths(backend, "submit/imagine") == ["/mj-relax/mj/submit/imagine"]
            assert "this server's jobs" in answer


async def test_a_speed_the_proxy_does_not_offer_is_said_so(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    fake = fake_discord
    async with MjproxySimulator(token=SIM_TOKEN, job_seconds=None, speeds=("fast", "relax")) as inner:
        sim = MjproxySim(inner)
        async with InProcessBot(sim.env(fake, tmp_path / "relay.db")).running(fake):
            answer = await private(await fake.slash("relay", {"speed": "turbo"}, subcommand="speed", user=OWNER))
            assert "turbo" in answer and "does not offer" in answer
            await fake.slash("imagine", {"prompt": "a fox"}, user=ALICE)
            await job_soon(sim, 1)
            assert paths(sim, "submit/imagine") == ["/mj/submit/imagine"], "the speed stayed as it was"


async def test_the_seed_of_a_grid_is_asked_once_and_kept(fake_discord: FakeDiscord, backend: BotSim,
                                                        tmp_path: Path) -> None:
    fake = fake_discord
    async with InProcessBot(backend.env(fake, tmp_path / "relay.db")).running(fake):
        await fake.slash("imagine", {"prompt": "a seeded fox"}, user=ALICE)
        await backend.complete(await job_soon(backend, 1))
        await card(fake, 1)
        asked = await fake.slash("job", {"jobid": "1", "seed": True}, user=ALICE)
        if isinstance(backend, UseapiSim):
            # useapi answers with a job of its own, which Midjourney's reply completes.
            seeding = await eventually(lambda: next((jobid for jobid, job in backend.sim.jobs.items()
                                                     if job.get("verb") == "seed_async"), None))
            await backend.sim.complete(seeding)
        first = await private(asked)
        found = next(line for line in first.splitlines() if line.startswith("Seed: `"))
        seed = found.split("`")[1]
        assert seed.isdigit() and f"--seed {seed}" in found
        calls = len(paths(backend, "seed_async")) + len(paths(backend, "image-seed"))
        assert calls == 1
        again = await private(await fake.slash("job", {"jobid": "1"}, user=ALICE))
        assert f"Seed: `{seed}`" in again
        await asyncio.sleep(0.1)
        assert len(paths(backend, "seed_async")) + len(paths(backend, "image-seed")) == 1, "kept, not asked again"
