"""The simulated proxy's routes for Midjourney's commands beyond imagine and the buttons: /submit/describe,
/submit/blend and GET /task/{id}/image-seed; with what every submission shares (the queue, the banned words).

After SubmitController.Describe and Blend, TaskController.ImageSeed and TaskService.SubmitSeed at ed32197.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from bot.backends.mjproxy.facts import (
    BLEND_DIMENSIONS,
    CODE_BANNED_PROMPT,
    CODE_FAILURE,
    CODE_IN_QUEUE,
    CODE_NOT_FOUND,
    CODE_QUEUE_REJECTED,
    CODE_SUCCESS,
    CODE_VALIDATION_ERROR,
    MAX_BLEND,
    MIN_BLEND,
)
from bot.backends.simkit import checked_body

from . import answers as say
from .controls import TaskControls
from .tasks import blend_prompt, mode_of, new_task, seed_of

__all__ = ["CommandRoutes"]

_LINK = re.compile(r"^https?://.+")


class CommandRoutes(TaskControls):
    """The routes above and the submit helpers every /submit route uses; the Simulator is one."""

    _queue_full_code: int
    queue_full_answers: int

    def add_command_routes(self, app: web.Application, prefix: str) -> None:
        """Serve these routes under prefix (/mj, or a speed base)."""
        app.router.add_post(f"{prefix}/submit/describe", self._describe)
        app.router.add_post(f"{prefix}/submit/blend", self._blend)
        app.router.add_get(f"{prefix}/task/{{id}}/image-seed", self._image_seed)

    # ---- shared by the submit handlers

    def _enqueued(self, task_id: str) -> web.Response:
        ahead = self.engine.enqueue(task_id)
        instance = self.tasks[task_id]["instanceId"]
        if ahead is None:
            return say.submit_result(CODE_SUCCESS, say.SUBMITTED, task_id, discordInstanceId=instance)
        return say.submit_result(CODE_IN_QUEUE, say.IN_QUEUE.format(ahead=ahead), task_id, numberOfQueues=ahead,
                                 discordInstanceId=instance)

    def _queue_full(self) -> web.Response | None:
        if self.engine.has_room():
            return None
        self.queue_full_answers += 1
        if self._queue_full_code == CODE_FAILURE:
            return say.submit_result(CODE_FAILURE, say.QUEUE_FULL_9)
        return say.submit_result(CODE_QUEUE_REJECTED, say.QUEUE_FULL_23)

    @staticmethod
    def _banned(prompt: str) -> web.Response | None:
        word = say.banned_word(prompt)
        if word is None:
            return None
        return say.submit_result(CODE_BANNED_PROMPT, say.BANNED, promptEn=prompt, bannedWord=word)

    def _file(self, request: web.Request, body: dict[str, Any], action: str, prompt: str,
              description: str) -> dict[str, Any]:
        task = new_task(self.engine.ids.task_id(), action=action, prompt=prompt, state=body.get("state"),
                        notify_hook=body.get("notifyHook"), nonce=self.engine.ids.nonce(),
                        mode=mode_of(request.path))
        task["description"] = description
        self.engine.file_task(task, say.root_of(request))
        return task

    # ---- the routes

    async def _describe(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = say.check_base(body, ("base64", "link", "botType"))
        if invalid is not None:
            return invalid
        data, link = (body.get("base64") or "").strip(), (body.get("link") or "").strip()
        if not data and not link:
            return say.submit_result(CODE_VALIDATION_ERROR, say.NO_IMAGE)
        if link and not _LINK.match(link):
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_LINK)
        if data and not say.check_data_urls([data]):
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_BASE64)
        full = self._queue_full()
        if full is not None:
            return full
        task = self._file(request, body, "DESCRIBE", "", "/describe")
        # Which image it was given, for tests: trueai keeps the upload at Discord, not on the task.
        task["properties"]["describeSource"] = "link" if link and not data else "base64"
        return self._enqueued(task["id"])

    async def _blend(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = say.check_base(body, ("botType",))
        if invalid is not None:
            return invalid
        images = body.get("base64Array")
        # Dimensions binds by name or not at all (the model fails: Result.Fail); left out it is SQUARE.
        dimensions = body.get("dimensions", "SQUARE")
        if dimensions is not None and dimensions not in BLEND_DIMENSIONS:
            return say.logic_failure("参数异常")
        if not isinstance(images, list) or not MIN_BLEND <= len(images) <= MAX_BLEND:
            return say.submit_result(CODE_VALIDATION_ERROR, say.BLEND_COUNT)
        if dimensions is None:
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_DIMENSIONS)
        if not say.check_data_urls(images):
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_BASE64)
        full = self._queue_full()
        if full is not None:
            return full
        task = self._file(request, body, "BLEND", "", "")
        task["description"] = f"/blend {task['id']} {len(images)}"
        # Midjourney writes a blend's prompt itself: its images' short links and the shape.
        task["promptEn"] = blend_prompt(images, dimensions)
        task["properties"]["dimensions"] = dimensions
        return self._enqueued(task["id"])

    async def _image_seed(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return say.submit_result(CODE_NOT_FOUND, say.PARENT_MISSING, http_status=404)
        if not task.get("seed"):
            if not task["properties"].get("messageHash"):  # not finished: Midjourney has no message to ask about
                return say.submit_result(CODE_VALIDATION_ERROR, say.PARENT_NOT_DONE, http_status=400)
            task["seed"] = seed_of(task["id"])  # what Midjourney's private message answers, kept on the task
        return say.submit_result(CODE_SUCCESS, say.FOUND, task["seed"])
