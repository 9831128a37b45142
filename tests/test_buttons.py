"""Every button kind, Custom Zoom, Remix, used U buttons and /button: the real bot, fake Discord, simulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bot.backends.useapi.simulator import Simulator
from tests.fakediscord import ALICE, BOB, CHANNEL_ID, EPHEMERAL, OWNER, FakeDiscord, InteractionRecord
from tests.harness import SIM_TOKEN, InProcessBot, bare_ref, bot_env, eventually, ref_number
from tests.resilience import manual_simulator

JSON = dict[str, Any]
GRID = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
# Every button the jobs/button page names, and one useapi might add later.
ALL_BUTTONS = [
    "U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4", "⬅️", "➡️", "⬆️", "⬇️",
    "Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x", "Make Square",
    "Upscale (2x)", "Upscale (4x)", "Upscale (Subtle)", "Upscale (Creative)",
    "Redo Upscale (2x)", "Redo Upscale (4x)", "Redo Upscale (Subtle)", "Redo Upscale (Creative)",
    "Make Variations", "Remaster", "Custom Zoom", "Animate (High motion)", "Retexture",
]  # fmt: skip


# -- helpers shared with test_answers.py ------------------------------------------------------------------


@asynccontextmanager
async def running_bot(fake: FakeDiscord, sim: Simulator, tmp_path: Path, **env: Any) -> AsyncIterator[InProcessBot]:
    """The real bot against the fakes; the test fails if Discord saw a body outside its spec."""
    async with InProcessBot(bot_env(fake, sim, tmp_path / "relay.db", **env)).running(fake) as runner:
        yield runner


def buttons(message: JSON) -> Iterator[JSON]:
    for row in message.get("components", []):
        yield from row["components"]


def name_of(component: JSON) -> str:
    return str(component.get("label") or component.get("emoji", {}).get("name"))


def names(message: JSON) -> list[str]:
    return [name_of(c) for c in buttons(message)]


def button_of(message: JSON, name: str) -> JSON:
    for component in buttons(message):
        if name_of(component) == name:
            return component
    raise AssertionError(f"no {name} button on message {message['id']}: {names(message)}")


def shows_job(message: JSON, number: int) -> bool:
    # "job #1" must not match "job #12"; ephemeral answers are not cards.
    return (not message.get("flags", 0) & EPHEMERAL
            and re.search(rf"job #{number}(?!\d)", message.get("content", "")) is not None)


async def card(fake: FakeDiscord, number: int, check: Any = None, timeout: float = 10) -> JSON:
    """Job `number`'s message in the channel once it satisfies `check` (default: a result with buttons)."""
    wanted = check or (lambda m: bool(m.get("components")) and bool(m.get("attachments")))
    return await fake.wait_for_message(lambda m: shows_job(m, number) and wanted(m), timeout=timeout)


async def click(fake: FakeDiscord, message: JSON, name: str, user: int = ALICE) -> InteractionRecord:
    return await fake.click(int(message["id"]), str(button_of(message, name)["custom_id"]), user=user)


async def private(record: InteractionRecord, n: int = 1) -> str:
    """The n-th ephemeral answer to an interaction (the response itself when it was not deferred)."""
    first = await record.wait_response()
    if first["type"] == 4:
        assert first["data"]["flags"] & EPHEMERAL
        return str(first["data"]["content"])
    message = await record.wait_followup(n)
    assert message["flags"] & EPHEMERAL
    return str(message["content"])


async def imagine(fake: FakeDiscord, prompt: str, user: int = ALICE) -> InteractionRecord:
    return await fake.slash("imagine", {"prompt": prompt}, user=user)


def sim_job(sim: Simulator, number: int) -> str:
    """The useapi jobid of local job `number` (its replyRef)."""
    for jobid, job in sim.jobs.items():
        if ref_number(job.get("replyRef")) == number:
            return jobid
    raise AssertionError(f"useapi has no job with replyRef {number}")


async def sim_job_soon(sim: Simulator, number: int) -> str:
    return str(await eventually(lambda: next(
        (j for j, b in sim.jobs.items() if ref_number(b.get("replyRef")) == number), None)))


def sent(sim: Simulator) -> list[JSON]:
    """The jobs/button bodies useapi received, without the replyUrl (it carries the secret)."""
    return [{k: bare_ref(v) if k == "replyRef" else v for k, v in (call.body or {}).items() if k != "replyUrl"}
            for call in sim.calls("jobs/button")]


def modal_input(opened: InteractionRecord) -> tuple[str, str]:
    """The custom_id and pre-filled value of the one text input of the modal the bot opened."""
    assert opened.modal is not None, f"no modal opened: {opened.callbacks}"
    for top in opened.modal["components"]:
        inner = top.get("components") or [top.get("component")]
        for component in inner:
            if component and component.get("type") == 4:
                return str(component["custom_id"]), str(component.get("value", ""))
    raise AssertionError(f"no text input in {opened.modal}")


async def open_modal(fake: FakeDiscord, message: JSON, name: str, user: int = ALICE) -> InteractionRecord:
    opened = await click(fake, message, name, user)
    assert (await opened.wait_response())["type"] == 9, "a modal opened"
    return opened


async def submit(fake: FakeDiscord, opened: InteractionRecord, value: str, user: int = ALICE) -> InteractionRecord:
    field, _ = modal_input(opened)
    return await fake.submit_modal(opened, {field: value}, user=user)


async def upscale_of_new_grid(fake: FakeDiscord, sim: Simulator, prompt: str) -> JSON:
    """/imagine, then U1: the upscale's card (job #2) with its own buttons (a simulator with a clock)."""
    await imagine(fake, prompt)
    grid = await card(fake, 1)
    await click(fake, grid, "U1")
    return await card(fake, 2)


# -- every button kind -------------------------------------------------------------------------------------


async def test_every_button_kind_gets_a_working_button_and_none_is_dropped(fake_discord: FakeDiscord,
                                                                          tmp_path: Path) -> None:
    fake = fake_discord
    # Twelve clicks at once: no queue limit, and room for all of them at useapi.
    env = {"callbacks": False, "USEAPI_MAX_JOBS": 15, "USER_MAX_QUEUED": 0}
    async with manual_simulator() as sim, running_bot(fake, sim, tmp_path, **env):
        await imagine(fake, "a castle of glass")
        jobid = await sim_job_soon(sim, 1)
        await sim.complete(jobid)
        # A job offering every button there is, and one useapi adds later (polling reads it after this).
        sim.jobs[jobid]["buttons"] = list(ALL_BUTTONS)

        first = await card(fake, 1)
        more = await fake.wait_for_message(lambda m: "More buttons for job #1" in m.get("content", ""))
        # A second page is a new message: a publish repeated after a crash must not post it twice.
        assert more.get("nonce") == "p1.2"
        for message in (first, more):
            rows = message["components"]
            assert 1 <= len(rows) <= 5
            assert all(1 <= len(row["components"]) <= 5 for row in rows)
        assert sorted(names(first) + names(more)) == sorted(ALL_BUTTONS), "every button shown exactly once"
        # Grouped as Midjourney does: U1-U4 with 🔄, then V1-V4, then the arrows as bare emoji.
        assert [name_of(c) for c in first["components"][0]["components"]] == ["U1", "U2", "U3", "U4", "🔄"]
        assert [name_of(c) for c in first["components"][1]["components"]] == ["V1", "V2", "V3", "V4"]
        assert [c["emoji"]["name"] for c in first["components"][2]["components"]] == ["⬅️", "➡️", "⬆️", "⬇️"]
        assert "label" not in button_of(first, "🔄")

        kinds = ["U2", "V3", "🔄", "⬅️", "Vary (Subtle)", "Zoom Out 1.5x", "Make Square", "Upscale (4x)",
                 "Redo Upscale (2x)", "Make Variations", "Remaster", "Animate (High motion)", "Retexture"]
        for name in kinds:
            message = first if name in names(first) else more
            record = await click(fake, message, name)
            assert (await record.wait_response())["type"] == 5, f"{name}: deferred while it is sent"
            assert "on its way" in await private(record)
        await eventually(lambda: len(sim.calls("jobs/button")) == len(kinds))
        assert [body["button"] for body in sent(sim)] == kinds
        assert all(body["jobid"] == jobid and "prompt" not in body for body in sent(sim))

        # The simulator does not know the new button yet: useapi's 400 comes back in words naming it.
        failed = await card(fake, 2 + kinds.index("Retexture"), lambda m: "❌" in m.get("content", ""))
        assert "does not support the button `Retexture`" in failed["content"]


# -- Custom Zoom -------------------------------------------------------------------------------------------


async def test_custom_zoom_opens_a_prefilled_modal_checks_it_and_sends_the_prompt(
        fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path):
        upscale = await upscale_of_new_grid(fake, sim, "a harbour at night --ar 3:2")
        calls_before = len(sim.calls("jobs/button"))

        opened = await open_modal(fake, upscale, "Custom Zoom")
        _, value = modal_input(opened)
        assert value == "a harbour at night --ar 3:2 --zoom 2"

        refusals = {
            "a harbour at night --zoom 3": "out of range",
            "a harbour at night": "needs exactly one `--zoom`",
            "a harbour at night --zoom big": "not a number",
            "a harbour " * 210 + "--zoom 1.5": "useapi accepts at most 2048",
        }
        for text, reason in refusals.items():
            attempt = await open_modal(fake, upscale, "Custom Zoom")
            answer = await private(await submit(fake, attempt, text))
            assert "Nothing was sent" in answer and reason in answer, answer
        assert len(sim.calls("jobs/button")) == calls_before, "a refused zoom costs no useapi call"

        answer = await private(await submit(fake, opened, "a harbour at night --ar 3:2 --zoom 1.5"))
        assert "on its way" in answer
        await eventually(lambda: len(sim.calls("jobs/button")) == calls_before + 1)
        assert sent(sim)[-1] == {"jobid": sim_job(sim, 2), "button": "Custom Zoom", "maxJobs": 3, "replyRef": "3",
                                 "prompt": "a harbour at night --ar 3:2 --zoom 1.5"}
        zoomed = await card(fake, 3)
        assert "Custom Zoom of #2" in zoomed["content"]


# -- Remix -------------------------------------------------------------------------------------------------


async def test_remix_opens_the_prompt_and_follows_the_account_state(fake_discord: FakeDiscord, sim: Simulator,
                                                                    tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path):
        answer = await private(await fake.slash("remix", {"state": "on"}, user=ALICE))
        assert "Remix is on for you" in answer and "has not seen" in answer
        await imagine(fake, "a paper boat")
        grid = await card(fake, 1)

        # Account state unknown: the modal is offered, pre-filled with the parent's prompt.
        opened = await open_modal(fake, grid, "V1")
        assert modal_input(opened)[1] == "a paper boat"
        assert "on its way" in await private(await submit(fake, opened, "a paper boat on a stormy sea"))
        await eventually(lambda: len(sim.calls("jobs/button")) == 1)
        assert sent(sim)[0]["prompt"] == "a paper boat on a stormy sea" and sent(sim)[0]["button"] == "V1"
        # U buttons take no prompt: Remix does not change them.
        assert (await (await click(fake, grid, "U1")).wait_response())["type"] == 5

        # Only admins switch the account; the bot reads Midjourney's answer (the call toggles).
        refused = await private(await fake.slash("relay", {"state": "on"}, subcommand="remix", user=BOB))
        assert "Manage Server" in refused and sim.calls("jobs/remix") == []
        sim.remix_on = True  # someone switched it by hand: the first toggle turns it off, so the bot toggles again
        answer = await private(await fake.slash("relay", {"state": "on"}, subcommand="remix", user=OWNER))
        assert "now on" in answer and "Remix mode turned on" in answer
        assert len(sim.calls("jobs/remix")) == 2 and sim.remix_on
        answer = await private(await fake.slash("relay", {"state": "on"}, subcommand="remix", user=OWNER))
        assert "already on" in answer and len(sim.calls("jobs/remix")) == 2

        opened = await open_modal(fake, grid, "V3")
        assert "on its way" in await private(await submit(fake, opened, "a paper boat, folded twice"))
        await eventually(lambda: len(sim.calls("jobs/button")) == 3)
        assert sent(sim)[2]["button"] == "V3" and sent(sim)[2]["prompt"] == "a paper boat, folded twice"

        answer = await private(await fake.slash("relay", {"state": "off"}, subcommand="remix", user=OWNER))
        assert "now off" in answer and not sim.remix_on and len(sim.calls("jobs/remix")) == 3
        # Known off: no modal, the click goes with the job's own prompt, and the member is told why.
        record = await click(fake, grid, "🔄")
        assert (await record.wait_response())["type"] == 5
        assert "account's Remix mode is off" in await private(record)
        await eventually(lambda: len(sim.calls("jobs/button")) == 4)
        assert sent(sim)[3]["button"] == "🔄" and "prompt" not in sent(sim)[3]

        answer = await private(await fake.slash("remix", {"state": "off"}, user=ALICE))
        assert "Remix is off for you" in answer
        assert (await (await click(fake, grid, "V2")).wait_response())["type"] == 5


# -- used U buttons ----------------------------------------------------------------------------------------


async def test_used_upscale_buttons_show_as_used_and_a_repeat_click_links_the_result(
        fake_discord: FakeDiscord, sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path):
        upscale = await upscale_of_new_grid(fake, sim, "a quiet library")
        grid = await fake.wait_for_message(lambda m: shows_job(m, 1) and button_of(m, "U1").get("style") == 1)
        assert button_of(grid, "U2")["style"] == 2, "unused U buttons stay grey"

        record = await click(fake, grid, "U1")
        answer = await private(record)
        assert f"https://discord.com/channels/{fake.GUILD_ID}/{CHANNEL_ID}/{upscale['id']}" in answer
        assert len(sim.calls("jobs/button")) == 1, "the existing upscale is linked, not made again"


# -- /button -----------------------------------------------------------------------------------------------


async def test_button_command_autocompletes_validates_and_sends(fake_discord: FakeDiscord, sim: Simulator,
                                                                tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path):
        await imagine(fake, "a snowy owl")
        await card(fake, 1)
        await imagine(fake, "a forbidden thing")  # the simulator moderates it: job #2 is not completed
        await card(fake, 2, lambda m: "🚫" in m.get("content", ""))

        jobs = await fake.autocomplete("button", {"jobid": "", "button": "U1"}, "jobid", user=ALICE)
        assert [c["value"] for c in jobs] == ["1"] and "a snowy owl" in jobs[0]["name"]
        offered = await fake.autocomplete("button", {"jobid": "1", "button": ""}, "button", user=ALICE)
        assert [c["value"] for c in offered] == GRID
        offered = await fake.autocomplete("button", {"jobid": "#1", "button": "v"}, "button", user=ALICE)
        assert [c["value"] for c in offered] == ["V1", "V2", "V3", "V4"]

        refusals = [
            ({"jobid": "2", "button": "U1"}, "Job #2 is moderated, not completed"),
            ({"jobid": "1", "button": "Zoom Out 2x"}, "`Zoom Out 2x` is not one of job #1's buttons"),
            ({"jobid": "1", "button": "U1", "prompt": "an owl"}, "`U1` does not take a prompt"),
            ({"jobid": "77", "button": "U1"}, "no job 77 in this server"),
            ({"jobid": "1", "button": "V1", "prompt": "x" * 2100}, "useapi accepts at most 2048"),
        ]
        for options, reason in refusals:
            answer = await private(await fake.slash("button", options, user=ALICE))
            assert "Nothing was sent" in answer and reason in answer, answer
        refused = await private(await fake.slash("button", {"jobid": "1", "button": "U1"}, user=BOB))
        assert "Only" in refused
        assert sim.calls("jobs/button") == [], "local refusals cost no useapi call"

        answer = await private(await fake.slash("button", {"jobid": "1", "button": "U3"}, user=ALICE))
        assert "on its way" in answer
        await eventually(lambda: len(sim.calls("jobs/button")) == 1)
        assert sent(sim)[0] == {"jobid": sim_job(sim, 1), "button": "U3", "maxJobs": 3, "replyRef": "3"}
        assert "U3 of #1" in (await card(fake, 3))["content"]

        # A jobid pasted from elsewhere: a job this bot never made, made straight at useapi.
        async with aiohttp.ClientSession() as http:
            made = await http.post(f"{sim.base_url}/jobs/imagine", json={"prompt": "a lantern"},
                                   headers={"Authorization": f"Bearer {SIM_TOKEN}"})
            outside = (await made.json())["jobid"]
        await sim.wait_final(outside)
        offered = await fake.autocomplete("button", {"jobid": outside, "button": ""}, "button", user=ALICE)
        assert [c["value"] for c in offered] == GRID
        answer = await private(await fake.slash("button", {"jobid": outside, "button": "V4"}, user=ALICE))
        assert "on its way" in answer
        await eventually(lambda: len(sim.calls("jobs/button")) == 2)
        assert sent(sim)[1]["jobid"] == outside and sent(sim)[1]["button"] == "V4"
        result = await card(fake, 5)
        assert "V4 of #4" in result["content"] and names(result) == GRID
        missing = "job:20240101000000000-user:1308-channel:1-bot:midjourney"
        answer = await private(await fake.slash("button", {"jobid": missing, "button": "U1"}, user=ALICE))
        assert "useapi does not know job" in answer


# -- replyUrl / replyRef ------------------------------------------------------------------------------------


async def test_a_reply_url_over_1024_characters_is_refused_before_useapi(fake_discord: FakeDiscord,
                                                                          sim: Simulator, tmp_path: Path) -> None:
    fake = fake_discord
    async with running_bot(fake, sim, tmp_path) as first:
        await imagine(fake, "a red kite")
        grid = await card(fake, 1)
        port = first.env["PORT"]
    # The operator moves the bot behind a very long public address.
    long_url = f"http://127.0.0.1:{port}/" + "relay/" * 200
    async with running_bot(fake, sim, tmp_path, port=int(port), PUBLIC_URL=long_url):
        answer = await private(await click(fake, grid, "V1"))
        assert "Nothing was sent" in answer and "at most 1024" in answer and "PUBLIC_URL" in answer
        assert sim.calls("jobs/button") == []
