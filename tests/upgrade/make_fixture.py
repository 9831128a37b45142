"""Make the upgrade fixture: a database written by the relay as it was at 87c342d (before the backend seam).

Run with a checkout of 87c342d, whose `bot`, `tests.harness` and `tests.fakediscord` this script imports:

    git worktree add /tmp/relay-87c342d 87c342d
    cd /tmp/relay-87c342d && python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'
    .venv/bin/python /path/to/tests/upgrade/make_fixture.py /path/to/tests/upgrade/relay-87c342d.db

The real bot of that commit runs against the fake Discord and the useapi simulator, as the end-to-end tests
do, and is then stopped with work in flight: the database holds what a real install of 87c342d leaves.

- job 1: /imagine "a red lighthouse", completed, with the grid buttons (published, message recorded)
- job 2: U1 of job 1, completed, with the upscale buttons
- job 3: /imagine "a green forest" by Bob, completed
- job 4: /imagine "a running river", running at useapi when the bot stopped
- job 5: /imagine "a queued mountain", queued behind job 4 (USEAPI_MAX_JOBS=1)
- server settings: click policy 'role', a gallery channel, a default daily quota and queue limit
- member limits: Alice's own queue limit and daily quota; Remix on for Alice

`fixture.json` beside the database records the ids the upgrade test needs (messages, custom_ids, jobids),
the jobs as useapi (the simulator) knew them and the channel's messages as Discord showed them when the bot
stopped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.useapi.simulator import Simulator

from tests.fakediscord import ALICE, BOB, GALLERY_ID, OWNER, ROLE_ID, FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, bot_env, eventually


def _result(fake: FakeDiscord, number: int) -> dict[str, Any] | None:
    for message in fake.messages.values():
        shown = re.search(rf"job #{number}(?!\d)", message.get("content", ""))
        if shown and message.get("components") and message.get("attachments"):
            return message
    return None


def _custom_id(message: dict[str, Any], name: str) -> str:
    for row in message["components"]:
        for component in row["components"]:
            if (component.get("label") or component.get("emoji", {}).get("name")) == name:
                return str(component["custom_id"])
    raise AssertionError(f"no {name} on {message['id']}")


async def make(out: Path) -> None:
    work = Path(tempfile.mkdtemp())
    db = work / "relay.db"
    async with FakeDiscord() as fake:
        simulator = Simulator(token=SIM_TOKEN, job_seconds=None)
        await simulator.start()
        runner = InProcessBot(bot_env(fake, simulator, db, USEAPI_MAX_JOBS=1))
        await runner.start(fake)
        try:
            async def relay(sub: str, options: dict[str, Any]) -> None:
                record = await fake.slash("relay", options, subcommand=sub, user=OWNER)
                if (await record.wait_response())["type"] == 5:
                    await record.wait_followup()

            await relay("policy", {"mode": "role", "role": ROLE_ID})
            await relay("gallery", {"channel": GALLERY_ID})
            await relay("quota", {"daily": 50})
            await relay("queue-limit", {"max": 8})
            await relay("queue-limit", {"max": 4, "member": ALICE})
            await relay("quota", {"daily": 20, "member": ALICE})
            remix = await fake.slash("remix", {"state": "on"}, user=ALICE)
            await remix.wait_response()

            async def finish(number: int) -> dict[str, Any]:
                jobid = await eventually(lambda: next(
                    (j for j, b in simulator.jobs.items() if b.get("replyRef") == str(number)), None))
                await simulator.complete(jobid)
                found: dict[str, Any] = await eventually(lambda: _result(fake, number), timeout=15)
                return found

            await fake.slash("imagine", {"prompt": "a red lighthouse"}, user=ALICE)
            grid = await finish(1)
            await fake.click(int(grid["id"]), _custom_id(grid, "U1"), user=ALICE)
            upscale = await finish(2)
            await fake.slash("imagine", {"prompt": "a green forest"}, user=BOB)
            forest = await finish(3)
            await fake.slash("imagine", {"prompt": "a running river"}, user=ALICE)
            await eventually(lambda: any(b.get("replyRef") == "4" for b in simulator.jobs.values()))
            await fake.slash("imagine", {"prompt": "a queued mountain"}, user=BOB)
            await eventually(lambda: any("a queued mountain" in m.get("content", "") for m in fake.messages.values()))
            await asyncio.sleep(0.5)
            facts = {
                "made_with": "87c342d",
                "grid": {"job": 1, "message_id": grid["id"], "channel_id": grid["channel_id"],
                         "custom_ids": {name: _custom_id(grid, name) for name in ("U1", "U2", "V1", "🔄")}},
                "upscale": {"job": 2, "message_id": upscale["id"],
                            "custom_ids": {"Vary (Strong)": _custom_id(upscale, "Vary (Strong)")}},
                "forest": {"job": 3, "message_id": forest["id"]},
                "jobids": {str(b["replyRef"]): j for j, b in simulator.jobs.items() if b.get("replyRef")},
                # What useapi knew at that moment, for the upgrade test's simulator to know it too.
                "useapi_jobs": simulator.jobs,
                # What the channel showed, for the upgrade test's Discord to show it too (its old buttons).
                "messages": [message for message in fake.messages.values()
                             if not message.get("flags", 0) & 64 and message["channel_id"] == grid["channel_id"]],
            }
        finally:
            await runner.stop()
            await simulator.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, out)
    out.with_name("fixture.json").write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    asyncio.run(make(Path(sys.argv[1]).resolve()))
