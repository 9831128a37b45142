"""Migration 4's parts in both dialects: what command made a job, a describe's prompts, a grid's seed, a
server's speed, the images members give (kept byte for byte, each under its own unguessable token) and the
region editor's one-use links (spent once, even by two racing submits)."""

from __future__ import annotations

import asyncio
import os

from bot.jobs import COMPLETED, RUNNING, OneUseLink
from bot.store import Store
from tests.store.conftest import Rig
from tests.store.helpers import GUILD, completed, new_job, running

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


async def test_a_job_keeps_its_command_dimensions_prompts_and_seed(store: Store, rig: Rig) -> None:
    blend = await new_job(store, action="blend", dimensions="portrait", prompt="")
    assert (blend.action, blend.dimensions, blend.kind, blend.prompts, blend.seed) == (
        "blend", "portrait", "blend", (), None)
    described = await running(store, action="describe")
    done = await store.jobs.finish(described.id, COMPLETED, expect=(RUNNING,),
                                   prompts=("a fox in snow, watercolour --ar 3:2", "a red fox ☃ --v 7"))
    assert done is not None and done.prompts == ("a fox in snow, watercolour --ar 3:2", "a red fox ☃ --v 7")
    grid = await completed(store)
    assert grid.action == "imagine" and grid.kind == "imagine"
    await store.jobs.set_seed(grid.id, "3141592653")
    reopened = await rig.reopen(store)
    assert (await reopened.jobs.get(grid.id)).seed == "3141592653"  # type: ignore[union-attr]
    again = await reopened.jobs.get(described.id)
    assert again is not None and again.prompts == done.prompts and again.kind == "describe"


async def test_a_server_speed_is_kept(store: Store) -> None:
    assert (await store.teams.guild_settings(GUILD)).speed is None
    assert (await store.teams.update_guild_settings(GUILD, speed="relax")).speed == "relax"
    assert (await store.teams.guild_settings(GUILD)).speed == "relax"


async def test_kept_images_come_back_byte_for_byte_under_unguessable_tokens(store: Store, rig: Rig) -> None:
    job = await new_job(store, action="blend", dimensions="square", prompt="")
    kept = await store.images.keep(job.id, [("image/png", PNG), ("image/jpeg", JPEG)])
    assert [(k.position, k.content_type, k.data) for k in kept] == [(0, "image/png", PNG), (1, "image/jpeg", JPEG)]
    assert len({k.token for k in kept}) == 2 and all(len(k.token) == 43 for k in kept)
    reopened = await rig.reopen(store)
    assert await reopened.images.of_job(job.id) == kept
    assert await reopened.images.by_token(kept[1].token) == kept[1]
    assert await reopened.images.by_token("x" * 43) is None
    assert await reopened.images.of_job(job.id + 1) == []


async def test_images_are_forgotten_with_their_job_or_once_it_finished_long_ago(store: Store) -> None:
    waiting = await new_job(store)
    done = await completed(store)
    deleted = await completed(store)
    for job in (waiting, done, deleted):
        await store.images.keep(job.id, [("image/png", PNG)])
    assert await store.images.forget(deleted.id) == 1
    assert await store.images.of_job(deleted.id) == []
    assert done.finished_at is not None
    # A job still waiting keeps its image whatever the time; a finished one only until `before`.
    assert await store.images.forget_finished_before(done.finished_at - 1) == 0
    assert await store.images.forget_finished_before(done.finished_at + 1) == 1
    assert await store.images.of_job(done.id) == []
    assert len(await store.images.of_job(waiting.id)) == 1


async def test_a_link_is_spent_once_even_by_racing_submits(store: Store, rig: Rig) -> None:
    job = await completed(store)
    link = OneUseLink("t" * 43, job.id, 77, 1000.0, 1900.0)
    await store.links.create(link)
    assert await store.links.get(link.token) == link
    assert await store.links.get("u" * 43) is None
    assert not await store.links.spend(link.token, 1900.0)  # expired at 1900: not spent
    # Two submits at once: one spends it, the other loses, whichever connection each runs on.
    other = await rig.open() if store.kind == "postgresql" else store
    outcomes = await asyncio.gather(store.links.spend(link.token, 1500.0), other.links.spend(link.token, 1500.0))
    assert sorted(outcomes) == [False, True]
    assert (await store.links.get(link.token)) == OneUseLink(link.token, job.id, 77, 1000.0, 1900.0, 1500.0)
    assert not await store.links.spend(link.token, 1501.0)
    await store.links.create(OneUseLink("v" * 43, job.id, 77, 2000.0, 2900.0))
    assert await store.links.forget_expired(2000.0) == 1
    assert await store.links.get(link.token) is None and await store.links.get("v" * 43) is not None
