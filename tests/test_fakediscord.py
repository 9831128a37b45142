"""Proves the fake Discord against a tiny discord.py bot defined here, over real loopback sockets."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from typing import Any, Self

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import (
    ALICE,
    APPLICATION_ID,
    BOB,
    CAROL,
    CHANNEL_ID,
    EPHEMERAL,
    GALLERY_ID,
    GUILD_ID,
    LOADING,
    OWNER,
    ROLE_ID,
    FakeDiscord,
    FakeGuild,
    SpecValidator,
)
from tests.fakediscord.models import EVERYONE_PERMISSIONS, SEND_MESSAGES
from tests.fakediscord.pytest_plugin import ErrorCollector
from tests.fakediscord.validation import message_limits

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Counter(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"fake:count:(?P<n>\d+)"):
    """A button whose state lives in its custom_id, so it works without the view in memory."""

    def __init__(self, n: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"Count {n}", custom_id=f"fake:count:{n}", style=discord.ButtonStyle.primary)
        )
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Counter(self.n + 1))
        await interaction.response.edit_message(view=view)


class Feedback(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(label="Text", custom_id="feedback:text")
    mood: discord.ui.Label[Feedback] = discord.ui.Label(
        text="Mood", component=discord.ui.TextInput(custom_id="feedback:mood", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        assert isinstance(self.mood.component, discord.ui.TextInput)
        await interaction.response.send_message(f"Got {self.text.value} ({self.mood.component.value})", ephemeral=True)


class PickView(discord.ui.View):
    """A plain view: dispatched by (message id, custom_id), so it must be attached to the response message."""

    @discord.ui.select(custom_id="pick:menu", options=[discord.SelectOption(label=x) for x in "abc"], max_values=2)
    async def menu(self, interaction: discord.Interaction[Any], select: discord.ui.Select[PickView]) -> None:
        await interaction.response.send_message(f"picked {','.join(select.values)}", ephemeral=True)


class TinyBot(commands.Bot):
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.members = True  # exercises member chunking (op 8) at startup
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.01)
        self.seen: list[str] = []
        self.uploaded: bytes | None = None

    async def setup_hook(self) -> None:
        # A non-sharded bot dials the hard-coded gateway; ask the (fake) API where it really is.
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.add_dynamic_items(Counter)
        guild = discord.Object(GUILD_ID)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


def add_commands(bot: TinyBot) -> None:
    @bot.tree.command(description="Say hello")
    async def hello(interaction: discord.Interaction[TinyBot], name: str, friend: discord.Member | None = None) -> None:
        if interaction.guild is None:
            await interaction.response.send_message("Not in DMs, sorry.", ephemeral=True)
            return
        view = discord.ui.View(timeout=None)
        view.add_item(Counter(0))
        extra = f" and {friend.display_name}" if friend else ""
        await interaction.response.send_message(f"Hello {name}{extra}", view=view)

    @hello.autocomplete("name")
    async def hello_names(interaction: discord.Interaction[TinyBot], current: str) -> list[app_commands.Choice[str]]:
        names = ["Ann", "Andrew", "Bob"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.lower().startswith(current.lower())]

    @bot.tree.command(description="Leave feedback")
    async def feedback(interaction: discord.Interaction[TinyBot]) -> None:
        await interaction.response.send_modal(Feedback())

    @bot.tree.command(description="Upload a file, then edit the message")
    async def upload(interaction: discord.Interaction[TinyBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.client.get_channel(GALLERY_ID)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("uploading", file=discord.File(io.BytesIO(PNG), "grid.png"))
        interaction.client.uploaded = await message.attachments[0].read()
        await message.edit(
            content="uploaded", attachments=[*message.attachments, discord.File(io.BytesIO(b"x"), "b.txt")]
        )
        await interaction.followup.send("done", ephemeral=True)
        await interaction.edit_original_response(content="finished")

    admin = app_commands.Group(name="admin", description="Admin tools")

    @admin.command(description="Mention a role in a channel")
    async def ping(
        interaction: discord.Interaction[TinyBot],
        role: discord.Role,
        where: discord.TextChannel,
        image: discord.Attachment,
    ) -> None:
        data = await image.read()
        await interaction.response.send_message(f"{role.name} in #{where.name}, {len(data)} bytes", ephemeral=True)

    bot.tree.add_command(admin)

    @bot.tree.command(description="Pick from a menu")
    async def pick(interaction: discord.Interaction[TinyBot]) -> None:
        view = PickView()
        await interaction.response.send_message("Pick some", view=view)

    @bot.tree.command(description="Follow up before acknowledging")
    async def rude(interaction: discord.Interaction[TinyBot]) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.NotFound as error:
            interaction.client.seen.append(f"followup {error.code}")
        await interaction.response.send_message("ok")


@pytest_asyncio.fixture
async def bot(fake_discord: FakeDiscord, discord_errors: ErrorCollector) -> AsyncIterator[TinyBot]:
    discord.http.Route.BASE = fake_discord.api_base
    tiny = TinyBot()
    add_commands(tiny)
    task = asyncio.create_task(tiny.start(fake_discord.token))
    await fake_discord.wait_ready()
    await asyncio.wait_for(tiny.wait_until_ready(), 5)
    try:
        yield tiny
    finally:
        await tiny.close()
        await task
    assert fake_discord.spec_errors == []
    assert fake_discord.response_errors == [], "the fake's own answers must match Discord's response schemas"
    discord_errors.assert_clean()


def test_every_served_route_has_a_spec_operation() -> None:
    validator = SpecValidator()
    assert FakeDiscord().served == {(op.method, op.template) for op in validator.operations}
    matched = validator.match("PATCH", "/webhooks/1/abc/messages/@original")
    assert matched is not None and matched[0].template.endswith("/@original"), "literal segments win"
    assert matched[1] == {"webhook_id": "1", "webhook_token": "abc"}


async def test_login_ready_and_sync(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    assert bot.user is not None and bot.user.id == APPLICATION_ID
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None and guild.owner_id == OWNER
    carol = guild.get_member(CAROL)
    assert carol is not None and [r.name for r in carol.roles] == ["@everyone", "artists"]
    owner, alice = guild.get_member(OWNER), guild.get_member(ALICE)
    assert owner is not None and owner.guild_permissions.manage_guild
    assert alice is not None and not alice.guild_permissions.manage_guild
    assert fake_discord.command_syncs == [GUILD_ID]
    assert {c["name"] for c in fake_discord.commands[GUILD_ID]} == {
        "hello",
        "feedback",
        "upload",
        "rude",
        "pick",
        "admin",
    }
    assert all(r.path != "/gateway/bot" or r.status == 200 for r in fake_discord.requests)


async def test_wrong_token_is_login_failure(fake_discord: FakeDiscord) -> None:
    discord.http.Route.BASE = fake_discord.api_base
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_slash_then_dynamic_button(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    command = await fake_discord.slash("hello", {"name": "Ann", "friend": BOB}, user=ALICE)
    response = await command.wait_response()
    assert response["type"] == 4 and response["data"]["content"] == "Hello Ann and Bob"
    assert command.ack_latency is not None and command.ack_latency < 1
    message = command.response_message
    assert message is not None and message["interaction_metadata"]["user"]["id"] == str(ALICE)
    assert fake_discord.channel_messages(CHANNEL_ID) == [message]

    click = await fake_discord.click(int(message["id"]), "fake:count:0", user=BOB)
    assert (await click.wait_response())["type"] == 7
    updated = fake_discord.messages[int(message["id"])]
    assert updated["components"][0]["components"][0]["custom_id"] == "fake:count:1"
    with pytest.raises(AssertionError, match="no button 'fake:count:0'"):
        await fake_discord.click(int(message["id"]), "fake:count:0", user=BOB)


async def test_autocomplete_and_dm_refusal(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    choices = await fake_discord.autocomplete("hello", {"name": "an"}, "name", user=CAROL)
    assert [c["value"] for c in choices] == ["Ann", "Andrew"]
    dm = await fake_discord.slash("hello", {"name": "Ann"}, user=ALICE, dm=True)
    answer = await dm.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL and "Not in DMs" in answer["data"]["content"]


async def test_modal_open_and_submit(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    opened = await fake_discord.slash("feedback", user=CAROL)
    assert (await opened.wait_response())["type"] == 9
    assert opened.modal is not None and {c["type"] for c in opened.modal["components"]} == {1, 18}
    submitted = await fake_discord.submit_modal(
        opened, {"feedback:text": "great", "feedback:mood": "happy"}, user=CAROL
    )
    answer = await submitted.wait_response()
    assert answer["data"]["content"] == "Got great (happy)" and answer["data"]["flags"] & EPHEMERAL


async def test_upload_edit_and_attachment_served(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    command = await fake_discord.slash("upload", user=OWNER)
    assert (await command.wait_response())["type"] == 5
    followup = await command.wait_followup()
    assert followup["content"] == "done" and followup["flags"] & EPHEMERAL
    final = await command.wait_original(lambda m: m["content"] == "finished")
    assert not final["flags"] & LOADING and final["flags"] & EPHEMERAL

    (posted,) = fake_discord.channel_messages(GALLERY_ID)
    assert posted["content"] == "uploaded"
    assert [a["filename"] for a in posted["attachments"]] == ["grid.png", "b.txt"]
    assert bot.uploaded == PNG, "Attachment.read() fetched the bytes from the fake"
    async with aiohttp.ClientSession() as session, session.get(posted["attachments"][1]["url"]) as got:
        assert await got.read() == b"x"
    uploads = [r for r in fake_discord.requests if r.files]
    assert [r.files[0][0] for r in uploads] == ["grid.png", "b.txt"]


async def test_invalid_bodies_are_rejected(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="y" * 81, custom_id="long"))
    with pytest.raises(discord.HTTPException):
        await channel.send("ok", view=view)
    assert len(fake_discord.spec_errors) == 2
    assert "content" in fake_discord.spec_errors[0] and "2000" in fake_discord.spec_errors[0]
    assert "components.0.components.0.label" in fake_discord.spec_errors[1]
    assert fake_discord.channel_messages(CHANNEL_ID) == []
    fake_discord.spec_errors.clear()


async def test_upload_limit_is_413(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    fake_discord.guilds[GUILD_ID].filesize_limit = 1000
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=discord.File(io.BytesIO(b"z" * 1001), "big.bin"))
    assert too_big.value.status == 413 and too_big.value.code == 40005


async def test_enforced_nonce_returns_the_first_message(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("once", nonce="n1")
    again = await channel.send("once", nonce="n1")
    other = await channel.send("once", nonce="n2")
    assert again.id == first.id and other.id != first.id
    assert [m["id"] for m in fake_discord.channel_messages(CHANNEL_ID)] == [str(first.id), str(other.id)]


async def test_delete_then_edit_is_404(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("soon gone")
    fake_discord.delete_message(CHANNEL_ID, message.id)
    with pytest.raises(discord.NotFound) as gone:
        await message.edit(content="edited")
    assert gone.value.code == 10008
    assert fake_discord.channel_messages(CHANNEL_ID) == []


async def test_acknowledgement_rules(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    command = await fake_discord.slash("rude", user=ALICE)
    await command.wait_response()
    assert bot.seen == ["followup 10015"]
    async with aiohttp.ClientSession() as session:
        url = f"{fake_discord.api_base}/interactions/{command.id}/{command.token}/callback"
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as second:
            assert second.status == 400 and (await second.json())["code"] == 40060
            assert second.headers["Content-Type"] == "application/json"


async def test_injected_failures(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    fake_discord.fail_next("POST", r"^/channels/\d+/messages$", 429)
    await channel.send("after a rate limit")  # discord.py waits retry_after and retries
    fake_discord.fail_next("POST", r"/messages$", 403)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("nope")
    assert forbidden.value.code == 50013
    assert [r.status for r in fake_discord.requests if r.method == "POST"][-3:] == [429, 200, 403]

    fake_discord.guilds[GUILD_ID].roles[GUILD_ID] = EVERYONE_PERMISSIONS & ~SEND_MESSAGES
    fake_discord.guilds[GUILD_ID].roles[fake_discord.BOT_ROLE_ID] = 0
    with pytest.raises(discord.Forbidden):
        await channel.send("muted")


async def test_dm_and_second_guild(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    alice = await bot.fetch_user(ALICE)
    await alice.send("psst")
    assert [m["content"] for m in fake_discord.dms] == ["psst"]
    joined = asyncio.create_task(bot.wait_for("guild_join", timeout=2))
    await asyncio.sleep(0)  # let the listener register before the guild is announced
    fake_discord.add_guild(FakeGuild(id=555, name="Elsewhere", owner_id=BOB, channels=[556], roles={}, members={}))
    assert (await joined).name == "Elsewhere"
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None
    member = await guild.fetch_member(CAROL)
    assert ROLE_ID in [r.id for r in member.roles]


async def test_reconnect_resumes(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    await fake_discord.reconnect_gateway()
    assert fake_discord.gateway.resumes == 1 and fake_discord.gateway.identifies == 1
    command = await fake_discord.slash("hello", {"name": "again"}, user=ALICE)
    assert (await command.wait_response())["data"]["content"] == "Hello again"


async def test_zlib_stream(make_fake_discord: Any, discord_errors: ErrorCollector) -> None:
    fake: FakeDiscord = await make_fake_discord(zlib=True)
    discord.http.Route.BASE = fake.api_base
    tiny = TinyBot()
    add_commands(tiny)
    task = asyncio.create_task(tiny.start(fake.token))
    try:
        await fake.wait_ready()
        command = await fake.slash("hello", {"name": "zip"}, user=ALICE)
        assert (await command.wait_response())["data"]["content"] == "Hello zip"
    finally:
        await tiny.close()
        await task
    assert fake.spec_errors == [] and fake.response_errors == []
    discord_errors.assert_clean()


async def test_member_requests_are_answered(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None
    found = await guild.query_members(user_ids=[CAROL])  # op 8 with a nonce, answered by a chunk
    assert [m.id for m in found] == [CAROL]
    assert len(await guild.chunk()) == len(fake_discord.guilds[GUILD_ID].members)
    assert [p["op"] for p in fake_discord.gateway.received].count(8) == 2


async def test_subcommand_with_resolved_options(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    options = {"role": ROLE_ID, "where": GALLERY_ID, "image": ("a.png", PNG)}
    command = await fake_discord.slash("admin", options, subcommand="ping", user=OWNER)
    answer = await command.wait_response()
    assert answer["data"]["content"] == f"artists in #gallery, {len(PNG)} bytes"
    with pytest.raises(AssertionError, match="requires"):
        await fake_discord.slash("admin", {"role": ROLE_ID}, subcommand="ping", user=OWNER)


async def test_select_menu(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    command = await fake_discord.slash("pick", user=BOB)
    await command.wait_response()
    message_id = command.original_message_id
    assert message_id is not None
    with pytest.raises(AssertionError, match="does not offer"):
        await fake_discord.select(message_id, "pick:menu", ["z"], user=BOB)
    chosen = await fake_discord.select(message_id, "pick:menu", ["a", "c"], user=ALICE)
    assert (await chosen.wait_response())["data"]["content"] == "picked a,c"


async def test_channels_guilds_and_unserved_routes(fake_discord: FakeDiscord, bot: TinyBot) -> None:
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None
    assert [c.name for c in await guild.fetch_channels()] == ["general", "gallery"]
    assert (await bot.fetch_channel(GALLERY_ID)).id == GALLERY_ID
    assert (await bot.fetch_guild(GUILD_ID)).name == "Test Guild"
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}/bans", guild_id=GUILD_ID))
    assert fake_discord.spec_errors == [f"GET /guilds/{GUILD_ID}/bans: unserved route"]
    fake_discord.spec_errors.clear()


def test_discord_limits_beyond_the_spec() -> None:
    validator = SpecValidator()
    matched = validator.match("POST", "/channels/1/messages")
    assert matched is not None
    operation = matched[0]

    def problems(body: dict[str, Any]) -> list[str]:
        return [str(p) for p in validator.validate_request(operation, body) + message_limits(body)]

    def button(custom_id: str, **extra: Any) -> dict[str, Any]:
        return {"type": 2, "style": 1, "label": "go", "custom_id": custom_id, **extra}

    assert problems({"content": "fine", "flags": EPHEMERAL}) == []
    assert any("6000" in p for p in problems({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}))
    assert any(
        "duplicated" in p for p in problems({"components": [{"type": 1, "components": [button("a"), button("a")]}]})
    )
    six_rows = {"components": [{"type": 1, "components": [button(f"b{i}")]} for i in range(6)]}
    assert any(p.startswith("components:") for p in problems(six_rows))
    assert any(
        "5 or fewer" in p
        for p in problems({"components": [{"type": 1, "components": [button(f"c{i}") for i in range(6)]}]})
    )
    link = {"type": 2, "style": 5, "label": "site", "url": "https://example.com", "custom_id": "x"}
    assert any("link button" in p for p in problems({"components": [{"type": 1, "components": [link]}]}))
    assert any("custom_id" in p for p in problems({"components": [{"type": 1, "components": [button("x" * 101)]}]}))
    assert any("flags" in p for p in problems({"content": "x", "flags": 1 << 1}))
    assert problems({"content": "x" * 2000}) == []
