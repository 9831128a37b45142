"""The simulated proxy's tasks: its own queue (max_running slots, queue_size places), the clock that moves a task
NOT_START → SUBMITTED → IN_PROGRESS → SUCCESS, the files it makes, and the notifyHook callbacks of every change.

Callbacks follow Services/NotifyService.cs (trueai ed32197): the whole task, POSTed as JSON to its
properties.notifyHook; a change that is not newer than the last one sent ("status:progress" order) is dropped;
nothing is retried. Deliveries of one task go out in order.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from bot.backends.mjproxy.facts import (
    CANCEL_REASON,
    DESCRIBE,
    FAILURE,
    FINAL_STATUSES,
    IN_PROGRESS,
    MODAL,
    NOT_START,
    SUBMITTED,
)
from bot.backends.mjproxy.facts import SUCCESS as SUCCESS_STATUS
from bot.backends.simkit import Background, SimEngine, run_clock, stop_clock

from .images import render_mp4, render_png
from .tasks import IdMaker, buttons_after, described_text, is_single_image, job_hash, now_ms

__all__ = ["TaskEngine"]

# TaskStatusExtensions.GetOrder: what NotifyService compares; IN_PROGRESS adds its percentage / 100.
_ORDER = {NOT_START: 0.0, SUBMITTED: 1.0, IN_PROGRESS: 3.0, FAILURE: 4.0, SUCCESS_STATUS: 5.0}


@dataclass
class _Meta:
    root: str  # scheme://host the task was asked on: its files are served from there
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    clock: asyncio.Task[None] | None = None
    notified: float = -1.0  # the order of the last change sent


class TaskEngine(SimEngine):
    """Every task the proxy knows, its queue and slots, the files made and the callbacks sent.

    job_seconds None is manual mode: a task that got a slot stays SUBMITTED until progress(), complete() or
    fail(). Callbacks need open() first; close() cancels the clocks and undelivered callbacks.
    """

    def __init__(self, *, job_seconds: float | None, progress_steps: int, max_running: int, queue_size: int,
                 callback_timeout: float) -> None:
        super().__init__(callback_timeout=callback_timeout)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.max_running_seen = 0
        self.max_running = max_running
        self.queue_size = queue_size
        self.ids = IdMaker()
        self._job_seconds = job_seconds
        self._progress_steps = max(0, progress_steps)
        self._meta: dict[str, _Meta] = {}
        # Insertion-ordered sets: the slots taken, and the queue in the order it is served.
        self._running: dict[str, None] = {}
        self._waiting: dict[str, None] = {}
        self._files: dict[str, tuple[bytes, str]] = {}

    def file(self, name: str) -> tuple[bytes, str] | None:
        """A served file and its content type, by name."""
        return self._files.get(name)

    @property
    def running(self) -> list[str]:
        """The tasks holding a slot (SUBMITTED or IN_PROGRESS)."""
        return list(self._running)

    @property
    def waiting(self) -> list[str]:
        """The tasks in the proxy's queue (NOT_START), first served first."""
        return list(self._waiting)

    # ---- filing and queueing

    def has_room(self) -> bool:
        """Whether a new task gets a slot or a place in the queue."""
        return len(self._running) < self.max_running or len(self._waiting) < self.queue_size

    def file_task(self, task: dict[str, Any], root: str) -> None:
        """Know a new task (NOT_START or MODAL); it is neither queued nor reported yet."""
        self.tasks[task["id"]] = task
        self._meta[task["id"]] = _Meta(root=root)
        self._background.notify()

    def enqueue(self, task_id: str) -> int | None:
        """Start the task if a slot is free (None), else queue it and return how many wait ahead of it."""
        task = self.tasks[task_id]
        task.update(status=NOT_START, submitTime=task.get("submitTime") or now_ms())
        if len(self._running) < self.max_running and not self._waiting:
            self._start(task_id)
            return None
        self._waiting[task_id] = None
        self._background.notify()
        return len(self._waiting) - 1

    def _start(self, task_id: str) -> None:
        # DiscordService: the interaction went out, the task holds a slot from here (StartTime, "0%").
        self._waiting.pop(task_id, None)
        self._running[task_id] = None
        self.max_running_seen = max(self.max_running_seen, len(self._running))
        self.tasks[task_id].update(status=SUBMITTED, startTime=now_ms(), progress="0%")
        self.send_callback(task_id)
        if self._job_seconds is not None:
            self._meta[task_id].clock = self._background.spawn(self._run(task_id, self._job_seconds))

    def _release(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        self._waiting.pop(task_id, None)
        self._stop_clock(task_id)
        while self._waiting and len(self._running) < self.max_running:
            self._start(next(iter(self._waiting)))

    def _stop_clock(self, task_id: str) -> None:
        stop_clock(self._meta[task_id].clock)
        self._meta[task_id].clock = None

    # ---- the clock

    async def _run(self, task_id: str, seconds: float) -> None:
        await run_clock(seconds, self._progress_steps, running=lambda: task_id in self._running,
                        progress=lambda percent: self.set_progress(task_id, percent),
                        finish=lambda: self.finish(task_id))

    # ---- changes of status; each returns its callback's delivery, if one goes out

    def set_progress(self, task_id: str, percent: int) -> asyncio.Task[None] | None:
        """IN_PROGRESS at this percentage, with a preview image (DiscordWebSocketService: imageUrl while drawing)."""
        task = self.tasks[task_id]
        if task["status"] in FINAL_STATUSES or task["status"] == MODAL:  # a MODAL task waits for its prompt
            return None
        if task_id not in self._running:
            self._start(task_id)  # a test's progress on a queued task takes it out of the queue
        percent = max(0, min(100, percent))
        name = f"{job_hash(task_id)}_progress_{percent}.png"
        grid = not is_single_image(task.get("action"))
        self._files[name] = (render_png(task_id, 64, grid=grid, progress=percent), "image/png")
        preview = f"{self._meta[task_id].root}/attachments/{name}"
        task.update(status=IN_PROGRESS, progress=f"{percent}%", imageUrl=preview)
        return self.send_callback(task_id)

    def finish(self, task_id: str) -> asyncio.Task[None] | None:
        """SUCCESS: its image (and a video for VIDEO tasks), its buttons, Midjourney's final prompt; a describe's
        image stands for the one described, and its final prompt is Midjourney's four."""
        task = self.tasks[task_id]
        action = task.get("action")
        hash_ = job_hash(task_id)
        single = is_single_image(action) or action == DESCRIBE
        side = 256 if single else 128
        png = render_png(task_id, side, grid=not single)
        self._files[f"{hash_}.png"] = (png, "image/png")
        root = self._meta[task_id].root
        image_url = f"{root}/attachments/{hash_}.png"
        finished = now_ms()
        task.update(status=SUCCESS_STATUS, isCompleted=True, progress="100%", finishTime=finished, imageUrl=image_url,
                    url=image_url, proxyUrl=image_url, width=side, height=side, size=len(png), contentType="image/png",
                    jobId=hash_, mode=task.get("requestMode") or "FAST", version="v 7",
                    buttons=buttons_after(action, hash_), failReason=None,
                    useTime=f"{(finished - (task.get('startTime') or finished)) / 1000:.2f} s")
        if action == "VIDEO":
            video = render_mp4(task_id)
            self._files[f"{hash_}.mp4"] = (video, "video/mp4")
            video_url = f"{root}/attachments/{hash_}.mp4"
            task.update(videoUrl=video_url, videoUrls=[{"url": video_url, "thumbnail": image_url}],
                        contentType="video/mp4", size=len(video), videoDuration=5, frameCount=120)
        prompt = task.get("promptEn") or task.get("prompt") or ""
        final = prompt if "--v " in prompt else f"{prompt} --v 7.0"  # Midjourney names the model it used
        if action == DESCRIBE:
            # DiscordWebSocketService: the embed's text is the task's description and its finalPrompt.
            final = described_text(task_id)
            task.update(description=final, promptEn=final)
        task["properties"].update(finalPrompt=final, messageHash=hash_, messageContent=f"**{final}** - <@1308> (fast)")
        self._release(task_id)
        return self.send_callback(task_id)

    def fail(self, task_id: str, reason: str) -> asyncio.Task[None] | None:
        """FAILURE with this failReason (TaskInfo.Fail: progress emptied, finishTime set)."""
        task = self.tasks[task_id]
        if task["status"] in FINAL_STATUSES:
            return None
        task.update(status=FAILURE, isCompleted=True, failReason=reason, progress="", finishTime=now_ms())
        self._release(task_id)
        return self.send_callback(task_id)

    def cancel(self, task_id: str) -> asyncio.Task[None] | None:
        """TaskController.Cancel: an unfinished task fails with "取消任务"; a finished one is left alone."""
        return self.fail(task_id, CANCEL_REASON)

    # ---- controls for tests: each waits for the callback it causes

    async def complete(self, task_id: str) -> None:
        """Complete a task now (queued, running or waiting for its modal) and wait for its callback."""
        if self.tasks[task_id]["status"] not in FINAL_STATUSES:
            await Background.settle(self.finish(task_id))

    async def fail_now(self, task_id: str, reason: str) -> None:
        """Fail a task now and wait for its callback."""
        await Background.settle(self.fail(task_id, reason))

    async def progress(self, task_id: str, percent: int) -> None:
        """Report progress on a task now and wait for its callback."""
        await Background.settle(self.set_progress(task_id, percent))

    # ---- callbacks

    def send_callback(self, task_id: str) -> asyncio.Task[None] | None:
        """POST the task as it is now to its notifyHook, unless an equal or newer change was sent already."""
        self._background.notify()
        task = self.tasks[task_id]
        meta = self._meta[task_id]
        order = _ORDER.get(task["status"], 0.0)
        if task["status"] == IN_PROGRESS:
            order += int(str(task.get("progress") or "0").rstrip("%") or 0) / 100
        if order <= meta.notified:
            return None
        meta.notified = order
        url = task["properties"].get("notifyHook")
        if not url:
            return None
        return self._background.deliver(meta.lock, url, copy.deepcopy(task))
