"""How the simulated API answers: useapi's error bodies, JSON responses, and the checks of a request body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.backends.simkit import json_unescaped, phrase
from bot.backends.useapi.facts import (
    BLEND_DIMENSIONS,
    CUSTOM_ZOOM,
    MAX_BLEND,
    MAX_JOBS_LIMIT,
    MAX_PROMPT,
    MAX_REPLY,
    MIN_BLEND,
    ONE_SHOT_BUTTONS,
    SUPPORTED_BUTTONS,
)

MODERATED_BODY: dict[str, Any] = {
    "error": "Action needed to continue",
    "errorDetails": "Sorry! Our AI moderators feel your prompt might be against our community standards.",
    "status": "moderated",
    "code": 422,
}
DISCORD_429_BODY: dict[str, Any] = {
    "error": "Discord /interactions failed with HTTP status 429",
    "errorDetails": '{"global":true,"message":"You are being rate limited.","retry_after":10}',
    "code": 429,
}
PENDING_MOD_ERROR = (
    "Your Discord account has received a pending moderation message from Midjourney. Please address this "
    "issue and reset the /account pendingModMessage before making any new API calls."
)
PENDING_MOD_DETAILS = "You have a pending moderation message. Please acknowledge it before using the bot further."
STATUS_ERRORS = {
    401: "Unauthorized",
    402: "Account has no subscription or subscription expired",
}
REMIX_REPLY = {
    True: "Remix mode turned on! You can disable it by running `/prefer remix` again.",
    False: "Remix mode turned off! You can enable it by running `/prefer remix` again.",
}
# Midjourney's answers to /fast, /relax and /turbo, as the simulated account gives them.
SPEED_REPLY = {
    "fast": "Fast mode turned on! Your jobs now use your fast hours. You can switch back with `/relax`.",
    "relax": "Relax mode turned on! Your jobs no longer use your fast hours, but may take longer to start. "
             "You can switch back with `/fast`.",
    "turbo": "Turbo mode turned on! Your jobs now run up to four times faster and use twice the fast hours. "
             "You can switch back with `/fast`.",
}
# Midjourney's /blend names the shape of the result with --ar; a square blend names none.
BLEND_ASPECT = {"Portrait": " --ar 2:3", "Square": "", "Landscape": " --ar 3:2"}
_URL = re.compile(r"^https?://\S+$")
_FORBIDDEN = re.compile(r"\bforbidden\b", re.IGNORECASE)
_BAD_PARAM = re.compile(r"--(badparam)\b")


def json_response(status: int, data: Any) -> web.Response:
    """data as JSON, unicode unescaped as useapi sends it; 596 with useapi's own reason phrase."""
    return json_unescaped(data, status, "Pending mod message" if status == 596 else None)


def error(status: int, message: str, **extra: Any) -> web.Response:
    """useapi's error shape: {"error", ...extra, "code"}."""
    return json_response(status, {"error": message, **extra, "code": status})


def outage_page(status: int) -> web.Response:
    """What a proxy in front of a down useapi answers: HTML, not JSON."""
    page = f"<html><body><h1>{status} {phrase(status)}</h1></body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


def check_common(body: dict[str, Any], *, max_jobs: bool = True) -> web.Response | None:
    """The 400 for a bad replyUrl, replyRef or (if max_jobs) maxJobs, else None."""
    for name in ("replyUrl", "replyRef"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return error(400, f"{name} must be a string")
        if len(value) > MAX_REPLY:
            return error(400, f"{name} is too long")
    if max_jobs and "maxJobs" in body:
        value = body["maxJobs"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS_LIMIT:
            return error(400, f"maxJobs must be an integer between 1 and {MAX_JOBS_LIMIT}")
    return None


def check_imagine(body: dict[str, Any]) -> web.Response | None:
    """The 400 useapi answers for this jobs/imagine body, else None."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return error(400, "prompt is missing")
    if len(prompt) > MAX_PROMPT:
        return error(400, "prompt is too long")
    return check_common(body)


def check_button(body: dict[str, Any], jobs: Mapping[str, dict[str, Any]]) -> web.Response | None:
    """The 400, 404 or 409 useapi answers for this jobs/button body, given the jobs it knows, else None."""
    for name in ("jobid", "button"):
        if not isinstance(body.get(name), str) or not body[name]:
            return error(400, f"{name} is missing")
    jobid: str = body["jobid"]
    button: str = body["button"]
    invalid = check_common(body)
    if invalid is not None:
        return invalid
    if button not in SUPPORTED_BUTTONS:
        return error(400, f"button {button} not supported")
    parent = jobs.get(jobid)
    if parent is None:
        return error(404, f"Unable to locate job {jobid}")
    if parent.get("status") != "completed":
        return error(400, f"job {jobid} is {parent.get('status')}, only completed jobs accept buttons")
    buttons = parent.get("buttons", [])
    if button not in buttons:
        listed = json.dumps(buttons, ensure_ascii=False)
        return error(400, f"button {button} not found in job {jobid} buttons {listed}")
    prompt = body.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
        return error(400, "prompt is too long" if isinstance(prompt, str) else "prompt must be a string")
    if button == CUSTOM_ZOOM and not (isinstance(prompt, str) and prompt.strip()):
        return error(400, "prompt is missing")
    if button in ONE_SHOT_BUTTONS:
        for child in parent.get("children", []):
            if child.get("button") == button:
                return error(
                    409,
                    f"Button {button} already executed by job {child['jobid']}",
                    button=button,
                    jobid=child["jobid"],
                )
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and _URL.match(value) is not None


def check_describe(body: dict[str, Any]) -> web.Response | None:
    """The 400 useapi answers for this jobs/describe body, else None."""
    url = body.get("describeUrl")
    if not isinstance(url, str) or not url.strip():
        return error(400, "describeUrl is missing")
    if not _is_url(url):
        return error(400, "describeUrl must be a valid URL")
    return check_common(body)


def check_blend(body: dict[str, Any]) -> web.Response | None:
    """The 400 useapi answers for this jobs/blend body, else None."""
    urls = body.get("blendUrls")
    if urls is None:
        return error(400, "blendUrls is missing")
    if not isinstance(urls, list) or not MIN_BLEND <= len(urls) <= MAX_BLEND:
        return error(400, f"blendUrls must be {MIN_BLEND} to {MAX_BLEND} image links")
    if not all(_is_url(url) for url in urls):
        return error(400, "blendUrls must be valid URLs")
    dimensions = body.get("blendDimensions")
    if dimensions is not None and dimensions not in BLEND_DIMENSIONS:
        return error(400, f"blendDimensions must be one of {', '.join(BLEND_DIMENSIONS)}")
    return check_common(body)


def check_seed(body: dict[str, Any], jobs: Mapping[str, dict[str, Any]]) -> web.Response | None:
    """The 400 or 404 useapi answers for this jobs/seed_async body, given the jobs it knows, else None."""
    jobid = body.get("jobid")
    if not isinstance(jobid, str) or not jobid:
        return error(400, "jobid is missing")
    invalid = check_common(body, max_jobs=False)
    if invalid is not None:
        return invalid
    job = jobs.get(jobid)
    if job is None:
        return error(404, f"Unable to locate job {jobid}")
    if job.get("status") != "completed":
        return error(400, f"job {jobid} is {job.get('status')}, only completed jobs have a seed")
    return None


def refusal(prompt: str) -> dict[str, Any] | None:
    """Midjourney's refusal of this prompt (a word "forbidden", a --badparam), None when it would run."""
    if _FORBIDDEN.search(prompt):
        return MODERATED_BODY
    if match := _BAD_PARAM.search(prompt):
        return {"error": "Invalid parameter", "errorDetails": f"Unrecognized parameter(s): `{match.group(1)}`"}
    return None
