"""Answers a test queued for the next calls to an endpoint, and the body useapi would send with each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.backends.simkit import InjectionQueue, phrase, root_of
from bot.backends.useapi.facts import DEFAULT_MAX_JOBS

from .answers import MODERATED_BODY, PENDING_MOD_DETAILS, PENDING_MOD_ERROR, STATUS_ERRORS
from .engine import JobEngine

__all__ = ["Injection", "Injections"]


@dataclass
class Injection:
    """Answer `remaining` more calls whose path ends with endpoint with status and body (None: the default)."""

    endpoint: str
    status: int
    body: dict[str, Any] | None
    remaining: int
    complete_later: bool


class Injections(InjectionQueue[Injection]):
    """The queued injections, first queued first used; the default bodies file jobs as useapi would."""

    def __init__(self, engine: JobEngine) -> None:
        super().__init__()
        self._engine = engine

    def body(self, injection: Injection, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        """What the injected answer carries: the test's body, else useapi's for that status and call."""
        if injection.body is not None:
            return injection.body
        engine = self._engine
        status = injection.status
        path = request.path
        makes_job = path.endswith(("jobs/imagine", "jobs/button", "jobs/blend", "jobs/describe"))
        jobid = str(body.get("jobid") or request.query.get("jobid") or "<jobid>")
        if status == 400:
            return {"error": "prompt is missing" if path.endswith("imagine") else "jobid is missing", "code": 400}
        if status == 404:
            return {"error": f"Unable to locate job {jobid}", "code": 404}
        if status == 409:
            button = str(body.get("button") or "U1")
            parent = engine.jobs.get(jobid, {})
            existing = next(
                (c["jobid"] for c in parent.get("children", []) if c.get("button") == button),
                engine.new_jobid(engine.channel),
            )
            return {
                "error": f"Button {button} already executed by job {existing}",
                "button": button,
                "jobid": existing,
                "code": 409,
            }
        if status == 422:
            if makes_job:
                return engine.refuse(path, root_of(request), body, "moderated", 422, MODERATED_BODY)
            return dict(MODERATED_BODY)
        if status == 429:
            max_jobs = body.get("maxJobs", DEFAULT_MAX_JOBS)
            return {
                "error": f"Maximum of {max_jobs} jobs executing in parallel supported",
                "executingJobs": engine.executing(),
                "code": 429,
            }
        if status == 504:
            if not makes_job:
                return {"error": "Gateway Timeout", "code": 504}
            job = engine.refuse(path, root_of(request), body, "failed", 504, {"error": "Job queued"})
            if injection.complete_later:
                engine.complete_queued_later(job["jobid"])
            return {"error": "Job queued", "jobid": job["jobid"], "status": "failed", "code": 504}
        if status == 596:
            if makes_job:
                details = {"error": "Pending mod message", "errorDetails": PENDING_MOD_DETAILS}
                return engine.refuse(path, root_of(request), body, "failed", 596, details)
            return {"error": PENDING_MOD_ERROR, "code": 596}
        return {"error": STATUS_ERRORS.get(status) or phrase(status), "code": status}
