"""The simulator's HTTP face: trueai-org/midjourney-proxy's /mj routes on a real aiohttp server, and the controls.

Routes and answers after Controllers/SubmitController.cs, TaskController.cs and SimpleAuthMiddleware.cs at
ed32197; where the simulator says what trueai no longer does (novicezk's codes 21 "already exists", 23 and 24),
answers.py names it.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Collection
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.backends.mjproxy.facts import (
    CODE_EXISTED,
    CODE_NOT_FOUND,
    CODE_QUEUE_REJECTED,
    CODE_VALIDATION_ERROR,
    FAILURE,
    MODAL,
    SPEED_MODES,
    SUCCESS,
    WAITING_FOR_MODAL,
)
from bot.backends.simkit import HttpSimulator, RecordedRequest, checked_body

from . import answers as say
from .commands import CommandRoutes
from .engine import TaskEngine
from .injections import Injection, Injections
from .tasks import action_of, mode_of, new_task

__all__ = ["RecordedRequest", "Simulator"]

_REMIXABLE = frozenset({"VARIATION", "PAN", "VIDEO"})  # and every reroll (TaskService.SubmitAction)


class Simulator(CommandRoutes, HttpSimulator):
    """An mj-proxy on loopback: its queue and slots, tasks on a clock, notifyHook callbacks, codes on demand.

    token None accepts any caller (the bot's embedded default). accept_bearer takes `Authorization: Bearer
    <token>` as hosted gateways do; trueai itself compares the whole header. strict_remix answers code 4 to
    enableRemix while the account's Remix is off, as trueai does; by default such a press gets its modal.
    Its routes are served under /mj and under the speed bases /mj-fast/mj, /mj-relax/mj, /mj-turbo/mj as trueai
    does (a task records the speed its path asked for as its requestMode); `speeds` names the speed bases it
    serves (all three by default), one left out answering 404 there as a proxy without it would.
    """

    def __init__(self, *, token: str | None = "sim-token",  # noqa: S107 - the simulator's published test token
                 job_seconds: float | None = 2.0, progress_steps: int = 2, max_running: int = 3,
                 queue_size: int = 10, queue_full_code: int = CODE_QUEUE_REJECTED, accept_bearer: bool = True,
                 strict_remix: bool = False, callback_timeout: float = 5.0,
                 speeds: Collection[str] = tuple(SPEED_MODES)) -> None:
        super().__init__(api_path="/mj")
        self.engine = TaskEngine(job_seconds=job_seconds, progress_steps=progress_steps, max_running=max_running,
                                 queue_size=queue_size, callback_timeout=callback_timeout)
        self._token = token
        self._accept_bearer = accept_bearer
        self._queue_full_code = queue_full_code
        self.strict_remix = strict_remix
        self.account_remix = False
        self.speeds = set(speeds)  # tests may change it: the speed bases served from the next request on
        # How often the proxy's queue was full (code 23, or 9): a relay that counts its slots never causes it.
        self.queue_full_answers = 0
        self._injections = Injections(self.engine)

    # ---- lifecycle of the server itself

    def make_app(self) -> web.Application:
        """The aiohttp application; start() serves it, or hand it to any aiohttp runner."""
        app = web.Application(middlewares=[self._middleware()])
        # SubmitController and TaskController are routed under each base alike (their [Route] attributes).
        for prefix in ("/mj", *(f"/mj-{speed}/mj" for speed in SPEED_MODES)):
            app.router.add_post(f"{prefix}/submit/imagine", self._imagine)
            app.router.add_post(f"{prefix}/submit/action", self._action)
            app.router.add_post(f"{prefix}/submit/modal", self._modal)
            app.router.add_get(f"{prefix}/task/list", self._list)
            app.router.add_post(f"{prefix}/task/list-by-condition", self._list_by_condition)
            app.router.add_post(f"{prefix}/task/list-by-ids", self._list_by_condition)
            app.router.add_get(f"{prefix}/task/{{id}}/fetch", self._fetch)
            app.router.add_post(f"{prefix}/task/{{id}}/cancel", self._cancel)
            self.add_command_routes(app, prefix)
        app.router.add_get("/attachments/{name}", self._attachment)
        app.cleanup_ctx.append(self._resources)
        return app

    async def _resources(self, _app: web.Application) -> AsyncIterator[None]:
        self.engine.open()
        try:
            yield
        finally:
            await self.engine.close()

    # ---- controls for tests

    def inject(self, endpoint: str, code_or_status: int, body: dict[str, Any] | None = None, times: int = 1) -> None:
        """Answer the next `times` calls whose path ends with endpoint: a result code (< 100) or HTTP status."""
        self._injections.add(Injection(endpoint, code_or_status, body, times))

    def set_account_remix(self, on: bool) -> None:
        """Remix on the proxy's Midjourney account: every V, Vary, pan and 🔄 press then waits for its modal."""
        self.account_remix = on

    # ---- middleware: record, outage, auth, injections

    def _middleware(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            body, bad_body = await self._record(request)
            mode = mode_of(request.path)
            api = request.path.startswith("/mj/") or mode is not None
            if api and self._outage is not None:
                return say.outage_page(self._outage)
            if api and not self._authorized(request):
                return say.text_response(401, say.UNAUTHORISED)
            if mode is not None and mode.lower() not in self.speeds:
                return web.Response(status=404)  # no route there: ASP.NET's empty 404, after the auth middleware
            injection = self._injections.take(request.path)
            if injection is not None:
                return self._injections.answer(injection, request, body or {})
            if bad_body:
                return say.logic_failure("参数异常")  # InvalidModelStateResponseFactory: Result.Fail, HTTP 200
            return await handler(request)

        return gate

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        # WorkContext: Authorization when present, else Mj-Api-Secret; compared whole with a user's token.
        given = request.headers.get("Authorization")
        if given is None:
            given = request.headers.get("Mj-Api-Secret", "")
        elif self._accept_bearer and given.startswith("Bearer "):
            given = given[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), self._token.encode())

    # ---- /submit

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = say.check_base(body, ("prompt", "botType"))
        if invalid is not None:
            return invalid
        prompt = (body.get("prompt") or "").strip()
        if not prompt:
            return say.submit_result(CODE_VALIDATION_ERROR, say.PROMPT_EMPTY)
        if body.get("base64Array") is not None and not say.check_data_urls(body["base64Array"]):
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_BASE64)
        refused = self._banned(prompt) or self._queue_full()
        if refused is not None:
            return refused
        task = new_task(self.engine.ids.task_id(), action="IMAGINE", prompt=prompt, state=body.get("state"),
                        notify_hook=body.get("notifyHook"), nonce=self.engine.ids.nonce(), mode=mode_of(request.path))
        self.engine.file_task(task, say.root_of(request))
        return self._enqueued(task["id"])

    async def _action(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = say.check_base(body, ("taskId", "customId"), ("enableRemix",))
        if invalid is not None:
            return invalid
        parent_id, custom_id = body.get("taskId") or "", body.get("customId") or ""
        if not parent_id.strip() or not custom_id.strip():
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_PARAMS)
        parent = self.tasks.get(parent_id)
        if parent is None:
            return say.submit_result(CODE_NOT_FOUND, say.PARENT_MISSING, http_status=404)
        if parent["status"] != SUCCESS:
            return say.submit_result(CODE_VALIDATION_ERROR, say.PARENT_NOT_DONE)
        action = action_of(custom_id, parent.get("action"))
        # trueai forwards any known prefix to Discord, which refuses a button the message does not carry.
        if action is None or custom_id not in {b.get("customId") for b in parent.get("buttons") or []}:
            return say.submit_result(CODE_VALIDATION_ERROR, say.UNKNOWN_ACTION)
        if custom_id.startswith("MJ::JOB::upsample::"):
            existing = self._upscale_of(parent_id, custom_id)
            if existing is not None:  # novicezk SubmitController.change: the upscale is already there
                return say.submit_result(CODE_EXISTED, say.EXISTED, existing["id"], status=existing["status"],
                                         imageUrl=existing.get("imageUrl"))
        modal = custom_id.startswith(("MJ::CustomZoom::", "MJ::Inpaint::"))
        if not modal and (action in _REMIXABLE or custom_id.startswith("MJ::JOB::reroll::")):
            asked = body.get("enableRemix") is True
            if asked and self.strict_remix and not self.account_remix:
                return say.submit_result(CODE_VALIDATION_ERROR, say.REMIX_OFF)
            modal = asked or self.account_remix
        final_prompt = parent["properties"].get("finalPrompt") or parent.get("promptEn") or ""
        if not modal:
            full = self._queue_full()
            if full is not None:
                return full
        task = new_task(self.engine.ids.task_id(), action=action, prompt=parent.get("prompt") or "",
                        state=body.get("state"), notify_hook=body.get("notifyHook"), nonce=self.engine.ids.nonce(),
                        parent=parent, custom_id=custom_id, mode=mode_of(request.path))
        task["promptEn"] = "" if custom_id.startswith("MJ::Inpaint::") else final_prompt
        self.engine.file_task(task, say.root_of(request))
        if not modal:
            return self._enqueued(task["id"])
        # TaskService.SubmitAction: the task waits, MODAL, for /submit/modal; nothing goes to Discord yet.
        task.update(status=MODAL, description=WAITING_FOR_MODAL)
        return say.submit_result(CODE_EXISTED, WAITING_FOR_MODAL, task["id"], finalPrompt=task["promptEn"],
                                 remix=True)

    def _upscale_of(self, parent_id: str, custom_id: str) -> dict[str, Any] | None:
        return next((task for task in self.tasks.values() if task.get("parentId") == parent_id
                     and task["properties"].get("custom_id") == custom_id and task["status"] != FAILURE), None)

    async def _modal(self, request: web.Request) -> web.Response:
        body = await checked_body(request)
        invalid = say.check_base(body, ("taskId", "prompt", "maskBase64"))
        if invalid is not None:
            return invalid
        task_id = body.get("taskId") or ""
        if not task_id.strip():
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_PARAMS)
        task = self.tasks.get(task_id)
        if task is None:
            return say.submit_result(CODE_NOT_FOUND, say.PARENT_MISSING, http_status=404)
        prompt = (body.get("prompt") or "").strip()
        if not prompt:  # SubmitController.Modal: an empty prompt falls back to the parent's
            parent = self.tasks.get(task.get("parentId") or "", {})
            prompt = parent.get("prompt") or parent.get("properties", {}).get("finalPrompt") or ""
        if not prompt:
            return say.submit_result(CODE_VALIDATION_ERROR, say.PROMPT_EMPTY)
        # trueai would send a second modal; the simulator refuses it so a test notices the double send.
        if task["status"] != MODAL:
            return say.submit_result(CODE_VALIDATION_ERROR, say.PARENT_NOT_DONE)
        if body.get("maskBase64") is not None and not say.check_data_urls([body["maskBase64"]]):
            return say.submit_result(CODE_VALIDATION_ERROR, say.BAD_BASE64)
        if str(task["properties"].get("custom_id") or "").startswith("MJ::Inpaint::") and not body.get("maskBase64"):
            # SubmitController.Modal: Vary (Region) redraws the region its mask marks; without one it is refused.
            return say.submit_result(CODE_VALIDATION_ERROR, say.MASK_MISSING)
        refused = self._banned(prompt) or self._queue_full()
        if refused is not None:
            return refused  # the task stays MODAL: its modal can be sent again
        task.update(prompt=prompt, promptEn=prompt, remixAutoSubmit=True, description="")
        task["properties"]["mask"] = body.get("maskBase64") is not None
        return self._enqueued(task["id"])

    # ---- /task

    async def _fetch(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.Response(status=204)  # ASP.NET answers a null ActionResult<TaskInfo> with No Content
        return say.json_response(task)

    async def _list(self, _request: web.Request) -> web.Response:
        newest = sorted(self.tasks.values(), key=lambda task: (task["submitTime"], task["id"]), reverse=True)
        return say.json_response(newest[:100])

    async def _list_by_condition(self, request: web.Request) -> web.Response:
        ids = (await checked_body(request)).get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            return say.logic_failure("参数异常")  # List<string> binds from strings only
        wanted = {i.strip() for i in ids or [] if i.strip()}
        return say.json_response([task for task_id, task in self.tasks.items() if task_id in wanted])

    async def _cancel(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if task_id in self.tasks:
            self.engine.cancel(task_id)  # its callback goes out on its own, as trueai's does
        return web.Response(status=200)  # Ok(): no body, known task or not

    async def _attachment(self, request: web.Request) -> web.Response:
        found = self.engine.file(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="404: Not Found")
        data, content_type = found
        return web.Response(body=data, content_type=content_type)
