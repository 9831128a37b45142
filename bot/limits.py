"""Per-member limits in one server: jobs waiting or running at once, and jobs sent to Midjourney per UTC day.

The server's admins set a default for the server and overrides for single members (`/relay quota`,
`/relay queue-limit`); without either, the USER_MAX_QUEUED and USER_DAILY_QUOTA settings apply. 0 means no
limit. The Midjourney slots themselves are shared by the whole bot and handed out by the relay's scheduler.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

from bot.messages import plural
from bot.settings import Settings
from bot.store import Store

DAY_SECONDS = 86_400
# How long an admitted request may take to become a job row before it stops counting as in flight.
# Filing takes milliseconds; the window only has to outlast a slow database write.
IN_FLIGHT_SECONDS = 30.0


def day_start(now: float) -> float:
    """00:00 UTC of the day `now` falls in (Unix time has no leap seconds, so days are 86400 s)."""
    return now - now % DAY_SECONDS


def next_reset(now: float) -> float:
    """The next 00:00 UTC, when daily quotas start again."""
    return day_start(now) + DAY_SECONDS


def when(timestamp: float) -> str:
    """A time as Discord shows it to each reader: their local clock and how far off it is."""
    return f"<t:{int(timestamp)}:t> (<t:{int(timestamp)}:R>)"


@dataclass(frozen=True, slots=True)
class Allowance:
    """The limits that apply to one member in one server; 0 is no limit."""

    queue_limit: int
    daily_quota: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Where one member stands against their limits in one server."""

    allowance: Allowance
    waiting_or_running: int
    sent_today: int
    resets_at: float

    @property
    def queue_full(self) -> bool:
        return 0 < self.allowance.queue_limit <= self.waiting_or_running

    @property
    def quota_used_up(self) -> bool:
        return 0 < self.allowance.daily_quota <= self.sent_today

    def refusal(self) -> str | None:
        """Which limit a new job would break and when it frees up, or None when it may be filed."""
        if self.queue_full:
            limit = self.allowance.queue_limit
            jobs = plural(self.waiting_or_running, "job")
            return (f"Nothing was sent: you already have {jobs} waiting or running in this server, and the queue "
                    f"limit is {limit}. A place frees up as soon as one of them finishes; see them with `/jobs`.")
        if self.quota_used_up:
            quota = self.allowance.daily_quota
            return (f"Nothing was sent: you have used today's quota of {quota} jobs in this server. It resets "
                    f"at 00:00 UTC, {when(self.resets_at)}.")
        return None

    def summary(self) -> str:
        """What `/quota` shows: both limits, what is left of each, and when the daily one resets."""
        allowance = self.allowance
        if allowance.daily_quota:
            left = max(0, allowance.daily_quota - self.sent_today)
            daily = (f"**Today:** {self.sent_today} of {allowance.daily_quota} jobs used, {left} left. "
                     f"Resets at 00:00 UTC, {when(self.resets_at)}.")
        else:
            daily = f"**Today:** {plural(self.sent_today, 'job')} sent; there is no daily quota."
        if allowance.queue_limit:
            room = max(0, allowance.queue_limit - self.waiting_or_running)
            queue = (f"**Waiting or running:** {self.waiting_or_running} of {allowance.queue_limit}; "
                     f"room for {room} more.")
        else:
            queue = f"**Waiting or running:** {self.waiting_or_running}; there is no queue limit."
        note = "Jobs refused before they ran do not count."
        return "\n".join([daily, queue, note])


class Limits:
    """Checks a member's limits just before a job is filed, with no gap for a burst of clicks to slip through."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._locks: defaultdict[tuple[int, int], asyncio.Lock] = defaultdict(asyncio.Lock)
        # When each recent admission was granted: a job admitted but not yet in the store still counts,
        # so twenty clicks arriving together cannot all pass a check that saw none of the others.
        self._admitted: dict[tuple[int, int], list[float]] = {}

    async def allowance(self, guild_id: int, user_id: int) -> Allowance:
        """The member's override, else the server's default, else the bot's setting."""
        server = await self.store.teams.guild_settings(guild_id)
        member = await self.store.teams.member_limits(guild_id, user_id)
        queue = _first(member.queue_limit, server.queue_limit, self.settings.USER_MAX_QUEUED)
        daily = _first(member.daily_quota, server.daily_quota, self.settings.USER_DAILY_QUOTA)
        return Allowance(queue_limit=queue, daily_quota=daily)

    async def usage(self, guild_id: int, user_id: int, now: float | None = None) -> Usage:
        now = time.time() if now is None else now
        return Usage(
            allowance=await self.allowance(guild_id, user_id),
            waiting_or_running=await self.store.jobs.count_waiting_or_running(guild_id, user_id),
            sent_today=await self.store.jobs.count_sent_since(guild_id, user_id, day_start(now)),
            resets_at=next_reset(now),
        )

    async def admit(self, guild_id: int, user_id: int) -> str | None:
        """Why the member may not file another job here now, or None (and the job counts from now on)."""
        key = (guild_id, user_id)
        async with self._locks[key]:
            now = time.time()
            recent = [t for t in self._admitted.get(key, []) if t > now - IN_FLIGHT_SECONDS]
            in_flight = 0
            if recent:
                newest = await self.store.jobs.list_jobs(guild_id, user_id, limit=len(recent))
                filed = sum(1 for job in newest if job.created_at >= recent[0])
                in_flight = len(recent) - filed
            usage = await self.usage(guild_id, user_id, now)
            usage = Usage(usage.allowance, usage.waiting_or_running + in_flight, usage.sent_today + in_flight,
                          usage.resets_at)
            refusal = usage.refusal()
            if refusal is None:
                recent.append(now)
            if recent:
                self._admitted[key] = recent
            else:
                self._admitted.pop(key, None)
            return refusal


def _first(*values: int | None) -> int:
    return next(value for value in values if value is not None)

