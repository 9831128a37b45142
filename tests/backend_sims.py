"""Each backend's simulator as the end-to-end tests drive it: one neutral face, so a flow both backends have is
one test body run on both (tests/test_both_backends.py), not a copy per backend."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bot.backends.mjproxy.simulator import Simulator as MjproxySimulator
from bot.backends.useapi.simulator import Simulator as UseapiSimulator
from bot.jobs import ErrorKind
from tests.fakediscord import FakeDiscord
from tests.harness import SIM_TOKEN, InProcessBot, bot_env, eventually, ref_number

JSON = dict[str, Any]
ATTACKER_IMAGE = "https://attacker.example/forged.png"


@dataclass(frozen=True)
class Sent:
    """One request the backend received that starts (or completes) a job, in the relay's words."""

    kind: str  # 'imagine', 'press' or 'prompt' (the second step of a press, mj-proxy's modal)
    prompt: str | None = None
    button: str | None = None  # the button's name, for a press
    parent: str | None = None  # the job it was pressed on (or, for 'prompt', the job waiting for it)
    ref: str | None = None


class BotSim(Protocol):
    """A backend's simulator under the real bot."""

    name: str  # the callback path's backend segment, the store's backend name
    refusable: ClassVar[frozenset[ErrorKind]]

    def env(self, fake: FakeDiscord, db: Path, **extra: Any) -> dict[str, str]: ...
    def job_of(self, number: int) -> str | None: ...
    async def complete(self, job_id: str) -> None: ...
    async def fail(self, job_id: str) -> None: ...
    async def progress(self, job_id: str, percent: int) -> None: ...
    def sent(self) -> list[Sent]: ...
    def refuse_next(self, kind: ErrorKind) -> None: ...
    def down(self, is_down: bool) -> None: ...
    def cancels(self) -> list[str]: ...
    def reads(self, job_id: str) -> int: ...
    def body(self, job_id: str) -> JSON: ...
    def forged_completion(self, job_id: str) -> JSON: ...
    def progress_body(self, job_id: str, percent: int) -> JSON: ...
    def button_names(self, job_id: str) -> list[str]: ...


async def job_soon(sim: BotSim, number: int, timeout: float = 10.0) -> str:
    """The backend's id of local job `number`, once the backend has it."""
    return str(await eventually(lambda: sim.job_of(number), timeout=timeout))


class UseapiSim:
    name = "useapi"
    refusable: ClassVar[frozenset[ErrorKind]] = frozenset({ErrorKind.BUSY, ErrorKind.MODERATED})

    def __init__(self, sim: UseapiSimulator) -> None:
        self.sim = sim

    def env(self, fake: FakeDiscord, db: Path, **extra: Any) -> dict[str, str]:
        return bot_env(fake, self.sim, db, **extra)

    def job_of(self, number: int) -> str | None:
        return next((jobid for jobid, job in self.sim.jobs.items() if ref_number(job.get("replyRef")) == number), None)

    async def complete(self, job_id: str) -> None:
        await self.sim.complete(job_id)

    async def fail(self, job_id: str) -> None:
        await self.sim.fail(job_id)

    async def progress(self, job_id: str, percent: int) -> None:
        await self.sim.progress(job_id, percent)

    def sent(self) -> list[Sent]:
        found: list[Sent] = []
        for call in self.sim.requests:
            body = call.body or {}
            if call.path.endswith("jobs/imagine"):
                found.append(Sent("imagine", body.get("prompt"), ref=body.get("replyRef")))
            elif call.path.endswith("jobs/button"):
                found.append(Sent("press", body.get("prompt"), body.get("button"), body.get("jobid"),
                                  body.get("replyRef")))
        return found

    def refuse_next(self, kind: ErrorKind) -> None:
        status = {ErrorKind.BUSY: 429, ErrorKind.MODERATED: 422}[kind]
        for endpoint in ("jobs/imagine", "jobs/button"):
            self.sim.inject(endpoint, status)

    def down(self, is_down: bool) -> None:
        self.sim.set_outage(is_down)

    def cancels(self) -> list[str]:
        return [call.query.get("jobid", "") for call in self.sim.calls("jobs/cancel/")]

    def reads(self, job_id: str) -> int:
        return sum(1 for call in self.sim.calls("jobs/") if call.query.get("jobid") == job_id)

    def body(self, job_id: str) -> JSON:
        return copy.deepcopy(self.sim.jobs[job_id])

    def forged_completion(self, job_id: str) -> JSON:
        body = self.body(job_id)
        body.update(status="completed", code=200, buttons=["U1", "U2"], content="(fast)", attachments=[
            {"url": ATTACKER_IMAGE, "filename": "forged.png", "content_type": "image/png", "size": 10}])
        return body

    def progress_body(self, job_id: str, percent: int) -> JSON:
        body = self.body(job_id)
        body.update(status="progress", content=f"**{body.get('prompt')}** - <@1308> ({percent}%) (fast)", code=200)
        return body

    def button_names(self, job_id: str) -> list[str]:
        return list(self.sim.jobs[job_id].get("buttons", []))


class MjproxySim:
    name = "mjproxy"
    refusable: ClassVar[frozenset[ErrorKind]] = frozenset({ErrorKind.BUSY, ErrorKind.MODERATED})

    def __init__(self, sim: MjproxySimulator) -> None:
        self.sim = sim

    def env(self, fake: FakeDiscord, db: Path, **extra: Any) -> dict[str, str]:
        return bot_env(fake, self.sim, db, **extra)

    def job_of(self, number: int) -> str | None:
        return next((task_id for task_id, task in self.sim.tasks.items() if ref_number(task.get("state")) == number
                     and task.get("status") != "MODAL"), None)

    async def complete(self, job_id: str) -> None:
        await self.sim.complete(job_id)

    async def fail(self, job_id: str) -> None:
        await self.sim.fail(job_id)

    async def progress(self, job_id: str, percent: int) -> None:
        await self.sim.progress(job_id, percent)

    def sent(self) -> list[Sent]:
        found: list[Sent] = []
        for call in self.sim.requests:
            body = call.body or {}
            if call.path.endswith("submit/imagine"):
                found.append(Sent("imagine", body.get("prompt"), ref=body.get("state")))
            elif call.path.endswith("submit/action"):
                parent = str(body.get("taskId"))
                buttons = self.sim.tasks.get(parent, {}).get("buttons") or []
                name = next((b.get("label") or b.get("emoji") for b in buttons
                             if b.get("customId") == body.get("customId")), None)
                found.append(Sent("press", None, name, parent, body.get("state")))
            elif call.path.endswith("submit/modal"):
                found.append(Sent("prompt", body.get("prompt"), parent=str(body.get("taskId"))))
        return found

    def refuse_next(self, kind: ErrorKind) -> None:
        code = {ErrorKind.BUSY: 23, ErrorKind.MODERATED: 24}[kind]
        for endpoint in ("submit/imagine", "submit/action"):
            self.sim.inject(endpoint, code)

    def down(self, is_down: bool) -> None:
        self.sim.set_outage(is_down)

    def cancels(self) -> list[str]:
        return [call.path.split("/")[-2] for call in self.sim.calls("/cancel")]

    def reads(self, job_id: str) -> int:
        singles = sum(1 for call in self.sim.calls(f"task/{job_id}/fetch"))
        many = sum(1 for call in self.sim.calls("task/list-by-condition") if job_id in (call.body or {}).get("ids", []))
        return singles + many

    def body(self, job_id: str) -> JSON:
        return copy.deepcopy(self.sim.tasks[job_id])

    def forged_completion(self, job_id: str) -> JSON:
        body = self.body(job_id)
        body.update(status="SUCCESS", progress="100%", imageUrl=ATTACKER_IMAGE,
                    buttons=[{"customId": "MJ::JOB::upsample::1::forged", "label": "U1", "emoji": "", "style": 2,
                              "type": 2}])
        return body

    def progress_body(self, job_id: str, percent: int) -> JSON:
        body = self.body(job_id)
        body.update(status="IN_PROGRESS", progress=f"{percent}%")
        return body

    def button_names(self, job_id: str) -> list[str]:
        return [str(b.get("label") or b.get("emoji")) for b in self.sim.tasks[job_id].get("buttons") or []]


@asynccontextmanager
async def useapi_sim() -> AsyncIterator[BotSim]:
    async with UseapiSimulator(token=SIM_TOKEN, job_seconds=None) as sim:
        yield UseapiSim(sim)


@asynccontextmanager
async def mjproxy_sim() -> AsyncIterator[BotSim]:
    async with MjproxySimulator(token=SIM_TOKEN, job_seconds=None) as sim:
        yield MjproxySim(sim)


SIMS: dict[str, Callable[[], AbstractAsyncContextManager[BotSim]]] = {"useapi": useapi_sim, "mjproxy": mjproxy_sim}

# Quick edits and backoffs, so a test's progress and retries take a moment, not seconds.
FAST = {"PROGRESS_EDIT_SECONDS": "0.05", "BACKEND_BACKOFF_SECONDS": "0.1", "BACKEND_BACKOFF_MAX_SECONDS": "0.3"}


@asynccontextmanager
async def bot_on(fake: FakeDiscord, sim: BotSim, tmp_path: Path, **env: Any) -> AsyncIterator[InProcessBot]:
    """The real bot on `sim` and the fake Discord, with a database in `tmp_path`; every body it sent to Discord
    is checked against the spec when the block ends."""
    async with InProcessBot(sim.env(fake, tmp_path / "relay.db", **{**FAST, **env})).running(fake) as runner:
        yield runner
