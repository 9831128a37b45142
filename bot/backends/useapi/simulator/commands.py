"""The simulator's routes for Midjourney's commands beyond imagine and the buttons: /describe, /blend, the seed
of a job (seed_async), and the settings commands (/prefer remix, /fast, /relax, /turbo); with the checks every
route that makes a job shares (maxJobs, moderation)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.backends.simkit import checked_body, root_of
from bot.backends.useapi.facts import DEFAULT_MAX_JOBS, SPEED_COMMANDS

from .answers import (
    BLEND_ASPECT,
    REMIX_REPLY,
    SPEED_REPLY,
    check_blend,
    check_common,
    check_describe,
    check_seed,
    error,
    json_response,
    refusal,
)
from .controls import JobControls
from .jobs import now_iso

__all__ = ["CommandRoutes"]


class CommandRoutes(JobControls):
    """The routes above, and the account settings they change; the Simulator is one."""

    rejections_429: int
    remix_on: bool
    speed: str  # the account's speed: what /fast, /relax or /turbo last set

    def add_command_routes(self, app: web.Application) -> None:
        """Serve these routes on the app."""
        app.router.add_post("/v2/jobs/describe", self._describe)
        app.router.add_post("/v2/jobs/blend", self._blend)
        app.router.add_post("/v2/jobs/seed_async", self._seed)
        app.router.add_post("/v2/jobs/remix", self._remix)
        for speed in SPEED_COMMANDS:
            app.router.add_post(f"/v2/jobs/{speed}", self._speed)

    # ---- checks shared by the job-making handlers

    def _queue_full(self, max_jobs: int) -> web.Response | None:
        executing = self.executing()
        if len(executing) < max_jobs:
            return None
        self.rejections_429 += 1
        return error(429, f"Maximum of {max_jobs} jobs executing in parallel supported", executingJobs=executing)

    def _moderate(self, request: web.Request, body: dict[str, Any], prompt: str) -> web.Response | None:
        refused = refusal(prompt)
        if refused is None:
            return None
        return json_response(422, self.engine.refuse(request.path, root_of(request), body, "moderated", 422, refused))

    def _start(self, request: web.Request, body: dict[str, Any], verb: str, prompt: str | None,
               **fields: Any) -> web.Response:
        """File the job with these fields of its request echoed, as useapi's blend and describe answers do."""
        job = self.engine.new_job(root_of(request), body, verb=verb, prompt=prompt)
        job.update(fields)
        self.engine.launch(job["jobid"])
        return json_response(200, job)

    # ---- the commands that make a job

    async def _describe(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_describe(body)
        if invalid is not None:
            return invalid
        url: str = body["describeUrl"]
        refused = self._queue_full(int(body.get("maxJobs", DEFAULT_MAX_JOBS))) or self._moderate(request, body, url)
        if refused is not None:
            return refused
        return self._start(request, body, "describe", None, describeUrl=url)

    async def _blend(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_blend(body)
        if invalid is not None:
            return invalid
        urls: list[str] = body["blendUrls"]
        dimensions = body.get("blendDimensions")
        # Midjourney writes a blend's prompt as its links and the shape it was asked for.
        prompt = " ".join(urls) + BLEND_ASPECT.get(str(dimensions), "")
        refused = self._queue_full(int(body.get("maxJobs", DEFAULT_MAX_JOBS))) or self._moderate(request, body,
                                                                                                  prompt)
        if refused is not None:
            return refused
        echoed = {"blendUrls": urls, **({"blendDimensions": dimensions} if dimensions else {})}
        return self._start(request, body, "blend", prompt, **echoed)

    async def _seed(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_seed(body, self.jobs)
        if invalid is not None:
            return invalid
        # The seed job completes with Midjourney's reply (results.py) on the usual clock, or when a test says.
        parent = self.jobs[body["jobid"]]
        return self._start(request, body, "seed_async", parent.get("prompt") or "")

    # ---- settings commands: they answer `completed` at once with Midjourney's reply

    def _settled(self, request: web.Request, body: dict[str, Any], verb: str, reply: str) -> web.Response:
        job = self.engine.new_job(root_of(request), body, verb=verb, prompt=None)
        job.update(status="completed", content=reply, embeds=[{"type": "rich", "description": reply}],
                   updated=now_iso())
        self.engine.send_callback(job["jobid"])
        return json_response(200, job)

    async def _remix(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_common(body, max_jobs=False)
        if invalid is not None:
            return invalid
        self.remix_on = not self.remix_on
        return self._settled(request, body, "remix", REMIX_REPLY[self.remix_on])

    async def _speed(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = check_common(body, max_jobs=False)
        if invalid is not None:
            return invalid
        self.speed = request.path.rsplit("/", 1)[-1]
        return self._settled(request, body, self.speed, SPEED_REPLY[self.speed])
