"""`check`'s questions to Discord, over its REST API with aiohttp alone (no gateway, no discord.py client): does
DISCORD_TOKEN log in, and is the bot in each server it serves with the server-level permissions it needs there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.reach import safe_url, unreachable
from bot.settings import Settings

# What the relay does in a channel: see it, post the working message and the result with its image, embeds
# and buttons, read back its own messages, and put ❌ under a working message. discord.Permissions names them.
NEEDED = (("view_channel", "View Channel"), ("send_messages", "Send Messages"), ("attach_files", "Attach Files"),
          ("embed_links", "Embed Links"), ("read_message_history", "Read Message History"),
          ("add_reactions", "Add Reactions"))
GUILD_PAGE = 200  # the most GET /users/@me/guilds lists at once
INVITE = "invite it (see README, Setting it up for real)"


@dataclass(frozen=True)
class Outcome:
    """One line of `check`: whether it passed, what was checked, and what was found."""

    ok: bool
    name: str
    detail: str


class DiscordRefused(Exception):
    """Discord answered a call with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class DiscordRest:
    """GETs at DISCORD_API_BASE with the bot token, answering parsed JSON."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str, timeout: float) -> None:
        self._session = session
        self._base = base
        self._headers = {"Authorization": f"Bot {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def get(self, path: str, **query: str | int) -> Any:
        async with self._session.get(f"{self._base}{path}", params=query or None, headers=self._headers,
                                     timeout=self._timeout) as response:
            if response.status != 200:
                raise DiscordRefused(response.status)
            return await response.json(content_type=None)


async def check_discord(settings: Settings, session: aiohttp.ClientSession, timeout: float) -> list[Outcome]:
    """The token's line, then one line per server the bot serves (each it is in, when none is configured)."""
    base = settings.DISCORD_API_BASE
    rest = DiscordRest(session, base, settings.DISCORD_TOKEN.get_secret_value(), timeout)
    try:
        me = await rest.get("/users/@me")
    except aiohttp.ClientConnectorError as exc:
        return [Outcome(False, "discord", unreachable(exc, base))]
    except TimeoutError:
        return [Outcome(False, "discord", f"no answer from Discord's API at {safe_url(base)} within {timeout:g}s")]
    except DiscordRefused as exc:
        if exc.status == 401:
            return [Outcome(False, "discord", "Discord refused DISCORD_TOKEN (401)")]
        return [Outcome(False, "discord", f"Discord's API at {safe_url(base)} answered {exc.status} to GET /users/@me")]
    bot_id = int(me["id"])
    found = [Outcome(True, "discord", f"DISCORD_TOKEN logs in as {me['username']} ({bot_id})")]
    allowed = settings.allowed_guilds
    try:
        guild_ids = sorted(allowed) if allowed is not None else await _guilds_of_the_bot(rest)
    except DiscordRefused as exc:
        return [*found, Outcome(False, "servers", f"Discord answered {exc.status} to GET /users/@me/guilds")]
    if not guild_ids:
        return [*found, Outcome(False, "servers", f"the bot is in no server yet: {INVITE}")]
    for guild_id in guild_ids:
        found.append(await _check_server(rest, guild_id, bot_id))
    return found


async def _guilds_of_the_bot(rest: DiscordRest) -> list[int]:
    ids: list[int] = []
    while True:
        page = await rest.get("/users/@me/guilds", limit=GUILD_PAGE, **({"after": ids[-1]} if ids else {}))
        ids.extend(int(guild["id"]) for guild in page)
        if len(page) < GUILD_PAGE:
            return ids


async def _check_server(rest: DiscordRest, guild_id: int, bot_id: int) -> Outcome:
    try:
        guild = await rest.get(f"/guilds/{guild_id}")
        member = await rest.get(f"/guilds/{guild_id}/members/{bot_id}")
    except DiscordRefused as exc:
        if exc.status in (403, 404):  # Missing Access, Unknown Guild or Unknown Member: not there
            return Outcome(False, f"server {guild_id}", f"the bot is not in this server: {INVITE}")
        return Outcome(False, f"server {guild_id}", f"Discord answered {exc.status} about this server")
    name = f"server {guild['name']} ({guild_id})"
    permissions = server_permissions(guild, member, bot_id)
    missing = [label for flag, label in NEEDED if not getattr(permissions, flag)]
    if missing:
        return Outcome(False, name, f"the bot is there but lacks {', '.join(missing)}")
    return Outcome(True, name, f"the bot is there with {', '.join(label for _, label in NEEDED)}")


def server_permissions(guild: dict[str, Any], member: dict[str, Any], user_id: int) -> discord.Permissions:
    """A member's server-level permissions, as Discord computes them: the owner has all; else @everyone's (the
    role whose id is the server's) and every role of the member's, together; Administrator grants all."""
    if int(guild["owner_id"]) == user_id:
        return discord.Permissions.all()
    roles = {int(role["id"]): int(role["permissions"]) for role in guild["roles"]}
    bits = roles.get(int(guild["id"]), 0)
    for role_id in member.get("roles", []):
        bits |= roles.get(int(role_id), 0)
    permissions = discord.Permissions(bits)
    return discord.Permissions.all() if permissions.administrator else permissions
