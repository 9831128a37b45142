"""What is written reads back the same, in either dialect: buttons, media, JSON with any characters, every
error kind, Discord's 19-digit ids as ints, and seconds as floats to the last bit."""

from __future__ import annotations

import dataclasses

from bot.jobs import COMPLETED, FAILED, QUEUED, RUNNING, Button, ErrorKind, JobRecord, Media
from bot.store import Store
from tests.store.conftest import Rig
from tests.store.helpers import BACKEND, new_job, running

SNOWFLAKE = 1_234_567_890_123_456_789  # 19 digits: more than a double holds exactly
BUTTONS = (Button("Upscale (Subtle)", "MJ::JOB::upsample_v6_2x_subtle::1::0f3e"), Button("⬅️", "MJ::JOB::pan_left::1"),
           Button("Vary (Region)", "MJ::Inpaint::1::0f3e::SOLO"), Button("🔄", "🔄"), Button('a "quoted" \\ name', "x"))
MEDIA = (Media("https://cdn.example/a.png?ex=1&hm=ff", "image/png", 31_457_280, 2048, 2048, "a.png"),
         Media("https://cdn.example/b.mp4", "video/mp4"), Media("https://cdn.example/c"))
BODY = {"prompt": "un renard roux 🦊 — «citation» 日本語 \u2028 tab\t nul-free", "progress": "100%", "nested": {
    "list": [1, 2.5, None, True, False, "x"], "big": SNOWFLAKE, "empty": {}, "quote": '"\\/'}, "order": "kept"}


async def _reread(store: Store, rig: Rig, job: JobRecord) -> JobRecord:
    """The job as a restarted process reads it."""
    again = await (await rig.reopen(store)).jobs.get(job.id)
    assert again is not None
    return again


async def test_a_finished_job_reads_back_field_for_field(store: Store, rig: Rig) -> None:
    job = await running(store, "task-1")
    done = await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,), buttons=BUTTONS, media=MEDIA,
                                   done_buttons=("U1", "U3"), job_json=BODY)
    assert done is not None
    shown = await store.jobs.mark_published(done.id, COMPLETED, SNOWFLAKE, "https://cdn.discord.example/a.png",
                                            (SNOWFLAKE + 1, SNOWFLAKE + 2))
    assert shown is not None
    assert (shown.buttons, shown.media, shown.done_buttons, shown.job_json) == (BUTTONS, MEDIA, ("U1", "U3"), BODY)
    assert list(shown.job_json or {}) == list(BODY), "the backend's body keeps its keys' order"
    assert shown.extra_message_ids == (SNOWFLAKE + 1, SNOWFLAKE + 2)
    assert await _reread(store, rig, shown) == shown


async def test_discord_ids_keep_every_digit(store: Store, rig: Rig) -> None:
    job = await store.jobs.create(guild_id=SNOWFLAKE, channel_id=SNOWFLAKE + 10, owner_id=SNOWFLAKE + 20,
                                  prompt="p", backend=BACKEND)
    await store.jobs.set_message(job.id, SNOWFLAKE + 30)
    await store.jobs.set_gallery_copy(job.id, SNOWFLAKE + 40)
    await store.teams.update_guild_settings(SNOWFLAKE, policy_role_id=SNOWFLAKE + 50, admin_channel_id=SNOWFLAKE + 60)
    await store.teams.update_member_limits(SNOWFLAKE, SNOWFLAKE + 20, daily_quota=3)
    await store.teams.set_remix(SNOWFLAKE + 20, True)
    again = await _reread(store, rig, job)
    ids = (again.guild_id, again.channel_id, again.owner_id, again.message_id, again.gallery_message_id)
    assert ids == (SNOWFLAKE, SNOWFLAKE + 10, SNOWFLAKE + 20, SNOWFLAKE + 30, SNOWFLAKE + 40)
    assert all(type(value) is int for value in ids)
    reopened = await rig.open()
    settings = await reopened.teams.guild_settings(SNOWFLAKE)
    assert (settings.policy_role_id, settings.admin_channel_id) == (SNOWFLAKE + 50, SNOWFLAKE + 60)
    assert (await reopened.teams.member_limits(SNOWFLAKE, SNOWFLAKE + 20)).daily_quota == 3
    assert await reopened.teams.remix_enabled(SNOWFLAKE + 20) is True
    assert (await reopened.jobs.by_message(SNOWFLAKE + 30) or job).id == job.id
    assert list(await reopened.jobs.last_served()) == []
    served = await running(reopened, owner=SNOWFLAKE + 20)
    assert list(await reopened.jobs.last_served()) == [SNOWFLAKE + 20] and served.owner_id == SNOWFLAKE + 20


async def test_seconds_are_floats_to_the_last_bit(store: Store, rig: Rig) -> None:
    made = 1_700_000_000.123_456_7
    imported = await store.jobs.import_completed(
        guild_id=1, channel_id=2, owner_id=3, backend=BACKEND, backend_job_id="t", prompt="p", buttons=(), media=(),
        done_buttons=(), job_json={}, created_at=made)
    queued = await new_job(store)
    await store.jobs.mark_submitting(queued.id)
    later = 1_800_000_000.987_654_3
    await store.jobs.requeue(queued.id, later)
    again = await _reread(store, rig, imported)
    assert again.created_at == made and type(again.created_at) is float
    requeued = await (await rig.open()).jobs.get(queued.id)
    assert requeued is not None and requeued.not_before == later and type(requeued.not_before) is float
    assert type(requeued.submitted_at) is float and type(requeued.updated_at) is float


async def test_every_error_kind_reads_back_as_itself(store: Store, rig: Rig) -> None:
    jobs = {}
    for kind in ErrorKind:
        job = await new_job(store)
        done = await store.jobs.finish(job.id, FAILED, expect=(QUEUED,), error=f"because {kind}", error_kind=kind)
        assert done is not None and done.error_kind is kind
        jobs[kind] = job.id
    reopened = await rig.reopen(store)
    for kind, job_id in jobs.items():
        again = await reopened.jobs.get(job_id)
        assert again is not None and again.error_kind is kind and again.error == f"because {kind}"


async def test_flags_read_back_as_booleans(store: Store) -> None:
    job = await new_job(store, simulated=False)
    assert job.simulated is False and job.published is False
    sim = await new_job(store, simulated=True)
    assert sim.simulated is True


async def test_an_empty_job_json_is_an_empty_dict_not_nothing(store: Store, rig: Rig) -> None:
    job = await new_job(store)
    run = await store.jobs.mark_running(job.id, "t", {})
    assert run is not None and run.job_json == {}
    assert (await _reread(store, rig, run)).job_json == {}


async def test_every_field_of_a_record_comes_from_the_table(store: Store) -> None:
    # A column the record lacks (or the reverse) would fail here before it reached the relay.
    job = await new_job(store)
    assert {f.name for f in dataclasses.fields(job)} == set(dataclasses.asdict(job))
