"""A job's way through the store: each transition guarded by the state it expects, so a stale or repeated
update (a duplicate callback, a poll racing a callback, a second process) returns None and changes nothing."""

from __future__ import annotations

import time

import pytest

from bot.jobs import (
    CANCELLED,
    COMPLETED,
    DUPLICATE,
    FAILED,
    FRUITLESS_STATES,
    MODERATED,
    QUEUED,
    RUNNING,
    SUBMITTING,
    Button,
    ErrorKind,
)
from bot.store import OneShotTaken, Store, job_ref
from tests.store.conftest import Rig
from tests.store.helpers import ALICE, BACKEND, CHANNEL, GRID_BUTTONS, GRID_MEDIA, GUILD, completed, new_job, running

FINISHERS = {FAILED: ErrorKind.JOB_FAILED, MODERATED: ErrorKind.MODERATED, CANCELLED: ErrorKind.CANCELLED,
             DUPLICATE: ErrorKind.ALREADY_DONE}


async def test_a_new_job_is_queued_with_what_was_asked(store: Store) -> None:
    before = time.time()
    job = await new_job(store, prompt="a red fox --ar 3:2", simulated=True)
    assert (job.status, job.attempts, job.progress, job.backend, job.backend_job_id) == (QUEUED, 0, None, BACKEND, None)
    assert (job.guild_id, job.channel_id, job.owner_id, job.prompt) == (GUILD, CHANNEL, ALICE, "a red fox --ar 3:2")
    assert job.ref == job_ref(store.identity, job.id)
    assert job.simulated is True and job.published is False
    assert before <= job.created_at == job.updated_at <= time.time()
    assert (job.not_before, job.submitted_at, job.finished_at, job.message_id) == (0.0, None, None, None)
    assert (job.buttons, job.media, job.done_buttons, job.extra_message_ids, job.job_json) == ((), (), (), (), None)
    second = await new_job(store)
    assert second.id > job.id


async def test_a_button_job_remembers_its_parent_and_button(store: Store) -> None:
    parent = await completed(store)
    child = await new_job(store, parent_id=parent.id, button=Button("V1", "MJ::JOB::variation::1::abc"),
                          button_prompt="a blue fox")
    assert (child.parent_id, child.button, child.button_ref, child.button_prompt) == (
        parent.id, "V1", "MJ::JOB::variation::1::abc", "a blue fox")
    assert child.kind == "button" and parent.kind == "imagine"
    assert [c.id for c in await store.jobs.children_of(parent.id)] == [child.id]


async def test_mark_submitting_counts_an_attempt_once(store: Store) -> None:
    job = await new_job(store)
    sent = await store.jobs.mark_submitting(job.id)
    assert sent is not None and (sent.status, sent.attempts) == (SUBMITTING, 1)
    assert sent.submitted_at is not None and sent.submitted_at >= job.created_at
    assert await store.jobs.mark_submitting(job.id) is None
    assert await store.jobs.get(job.id) == sent
    assert await store.jobs.mark_submitting(10**9) is None


async def test_requeue_keeps_or_resets_the_attempts(store: Store) -> None:
    job = await new_job(store)
    await store.jobs.mark_submitting(job.id)
    later = time.time() + 15.25
    again = await store.jobs.requeue(job.id, later, error="busy, trying again")
    assert again is not None and (again.status, again.attempts, again.error) == (QUEUED, 1, "busy, trying again")
    assert again.not_before == later
    await store.jobs.mark_submitting(job.id)
    fresh = await store.jobs.requeue(job.id, 0, reset_attempts=True)
    assert fresh is not None and (fresh.attempts, fresh.error, fresh.not_before) == (0, None, 0.0)
    assert await store.jobs.requeue(job.id, 5.0) is not None, "a queued job may be requeued"


async def test_a_running_or_final_job_is_never_requeued(store: Store) -> None:
    job = await running(store)
    assert await store.jobs.requeue(job.id, 0) is None
    assert await store.jobs.get(job.id) == job


async def test_mark_running_takes_the_backends_job_once(store: Store) -> None:
    job = await new_job(store)
    sent = await store.jobs.mark_submitting(job.id)
    assert sent is not None
    await store.jobs.requeue(job.id, 0, error="busy")
    await store.jobs.mark_submitting(job.id)
    run = await store.jobs.mark_running(job.id, "task-1", {"id": "task-1", "prompt": "ü"})
    assert run is not None and (run.status, run.backend_job_id, run.job_json) == (RUNNING, "task-1",
                                                                                   {"id": "task-1", "prompt": "ü"})
    assert (run.error, run.error_kind) == (None, None)
    assert run.last_event_at is not None
    assert await store.jobs.mark_running(job.id, "task-2", {}) is None
    assert await store.jobs.get(job.id) == run
    assert await store.jobs.by_backend_id(BACKEND, "task-1") == run


async def test_a_queued_job_found_running_at_the_backend_is_adopted(store: Store) -> None:
    # After a crash between the backend's answer and our write, the job is still queued here.
    job = await new_job(store)
    adopted = await store.jobs.mark_running(job.id, "task-9", {"id": "task-9"})
    assert adopted is not None and adopted.status == RUNNING


async def test_awaiting_prompt_keeps_the_first_steps_job_only_while_submitting(store: Store) -> None:
    job = await new_job(store)
    assert await store.jobs.mark_awaiting_prompt(job.id, "modal-1") is None
    await store.jobs.mark_submitting(job.id)
    waiting = await store.jobs.mark_awaiting_prompt(job.id, "modal-1")
    assert waiting is not None and (waiting.status, waiting.backend_job_id) == (SUBMITTING, "modal-1")


async def test_progress_only_moves_forward_and_only_while_running(store: Store) -> None:
    job = await running(store)
    first = await store.jobs.record_progress(job.id, 40, "https://cdn.example/p1.webp", {"progress": "40%"})
    assert first is not None and (first.progress, first.preview_url, first.job_json) == (
        40, "https://cdn.example/p1.webp", {"progress": "40%"})
    back = await store.jobs.record_progress(job.id, 20, None, None)
    assert back is not None and (back.progress, back.preview_url, back.job_json) == (
        40, "https://cdn.example/p1.webp", {"progress": "40%"})
    unknown = await store.jobs.record_progress(job.id, None, None, None)
    assert unknown is not None and unknown.progress == 40
    await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    assert await store.jobs.record_progress(job.id, 99, None, None) is None
    assert (await store.jobs.get(job.id) or job).progress == 100


async def test_no_progress_yet_reads_as_zero_once_noted(store: Store) -> None:
    job = await running(store)
    noted = await store.jobs.record_progress(job.id, None, None, None)
    assert noted is not None and noted.progress == 0


async def test_note_progress_is_guarded_by_the_backends_job_id_and_the_reference(store: Store) -> None:
    job = await running(store, "task-a")
    noted = await store.jobs.note_progress(job.id, "task-a", 30, None)
    assert noted is not None
    brief, progress, preview = noted
    assert (brief.id, brief.owner_id, brief.channel_id, brief.status, progress, preview) == (
        job.id, ALICE, CHANNEL, RUNNING, 30, None)
    assert isinstance(progress, int)
    assert await store.jobs.note_progress(job.id, "task-b", 50, None) is None, "another backend job"
    assert await store.jobs.note_progress(job.id, "task-a", 50, str(job.id)) is None, "a legacy reference"
    again = await store.jobs.note_progress(job.id, "task-a", 10, None)
    assert again is not None and again[1] == 30, "only forward"
    await store.jobs.record_progress(job.id, None, "https://cdn.example/p.webp", None)
    shown = await store.jobs.note_progress(job.id, "task-a", None, None)
    assert shown is not None and shown[1:] == (30, "https://cdn.example/p.webp")
    await store.jobs.finish(job.id, FAILED, expect=(RUNNING,), error="x", error_kind=ErrorKind.JOB_FAILED)
    assert await store.jobs.note_progress(job.id, "task-a", 90, None) is None, "not running any more"


async def test_a_legacy_row_answers_only_to_its_legacy_reference(store: Store, rig: Rig) -> None:
    # Jobs filed before identities keep the reference they were sent with ("7"), the migration wrote it.
    job = await running(store, "task-old")
    rig.fetch("UPDATE jobs SET ref = ? WHERE id = ?", str(job.id), job.id)
    reread = await store.jobs.get(job.id)
    assert reread is not None and reread.ref == str(job.id)
    assert await store.jobs.note_progress(job.id, "task-old", 50, None) is None
    noted = await store.jobs.note_progress(job.id, "task-old", 50, str(job.id))
    assert noted is not None and noted[1] == 50


async def test_touch_notes_an_event(store: Store) -> None:
    job = await running(store)
    await store.jobs.touch(job.id)
    touched = await store.jobs.get(job.id)
    assert touched is not None and touched.last_event_at is not None and touched.last_event_at >= (
        job.last_event_at or 0)


async def test_finish_completed_keeps_what_the_backend_made(store: Store) -> None:
    job = await running(store)
    await store.jobs.record_progress(job.id, 80, "https://cdn.example/p.webp", None)
    done = await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,), buttons=GRID_BUTTONS, media=GRID_MEDIA,
                                   done_buttons=("U1",), job_json={"status": "SUCCESS"})
    assert done is not None
    assert (done.status, done.progress, done.published, done.preview_url) == (COMPLETED, 100, False, None)
    assert (done.buttons, done.media, done.done_buttons, done.job_json) == (GRID_BUTTONS, GRID_MEDIA, ("U1",),
                                                                             {"status": "SUCCESS"})
    assert done.finished_at is not None and done.last_event_at == done.finished_at
    assert done.is_final and done.result == GRID_MEDIA[0]
    assert await store.jobs.get(job.id) == done


async def test_finish_leaves_what_it_is_not_given(store: Store) -> None:
    job = await running(store, "task-keep")
    done = await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    assert done is not None and (done.backend_job_id, done.job_json) == ("task-keep", {"id": f"task-{job.id}"})


@pytest.mark.parametrize("status", sorted(FINISHERS))
async def test_finish_as_failed_records_the_error(store: Store, status: str) -> None:
    parent = await completed(store)
    job = await running(store)
    done = await store.jobs.finish(job.id, status, expect=(RUNNING,), error="words", error_kind=FINISHERS[status],
                                   duplicate_of=parent.id if status == DUPLICATE else None, backend_job_id="task-z")
    assert done is not None and (done.status, done.error, done.error_kind) == (status, "words", FINISHERS[status])
    assert done.backend_job_id == "task-z" and done.progress is None
    assert done.duplicate_of == (parent.id if status == DUPLICATE else None)


async def test_a_repeated_or_stale_finish_changes_nothing(store: Store) -> None:
    job = await running(store)
    done = await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,), media=GRID_MEDIA)
    assert done is not None
    assert await store.jobs.finish(job.id, FAILED, expect=(RUNNING, QUEUED, SUBMITTING), error="late") is None
    assert await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,)) is None
    assert await store.jobs.get(job.id) == done
    assert await store.jobs.finish(10**9, COMPLETED, expect=(RUNNING,)) is None


async def test_published_once_with_its_messages(store: Store) -> None:
    job = await running(store)
    await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,), media=GRID_MEDIA)
    assert [j.id for j in await store.jobs.unpublished_final()] == [job.id]
    assert await store.jobs.mark_published(job.id, FAILED, 1, None) is None, "not the state on screen"
    shown = await store.jobs.mark_published(job.id, COMPLETED, 1_577_422_703_340_552_192,
                                            "https://cdn.discord.example/a.png", (1_577_422_703_340_552_193,))
    assert shown is not None and shown.published is True
    assert (shown.message_id, shown.image_url, shown.extra_message_ids, shown.undelivered) == (
        1_577_422_703_340_552_192, "https://cdn.discord.example/a.png", (1_577_422_703_340_552_193,), None)
    assert await store.jobs.unpublished_final() == []
    assert await store.jobs.by_message(1_577_422_703_340_552_192) == shown


async def test_an_undelivered_result_says_why_and_refusals_are_counted(store: Store) -> None:
    job = await running(store)
    await store.jobs.finish(job.id, COMPLETED, expect=(RUNNING,))
    assert [await store.jobs.note_publish_refused(job.id) for _ in range(3)] == [1, 2, 3]
    assert await store.jobs.note_publish_refused(10**9) == 0
    given_up = await store.jobs.mark_published(job.id, COMPLETED, None, None, undelivered="no permission")
    assert given_up is not None and (given_up.published, given_up.undelivered, given_up.publish_failures) == (
        True, "no permission", 3)


async def test_message_and_gallery_copy(store: Store) -> None:
    job = await new_job(store)
    shown = await store.jobs.set_message(job.id, 1_577_422_705_429_315_584)
    assert shown is not None and shown.message_id == 1_577_422_705_429_315_584
    assert await store.jobs.set_message(10**9, 5) is None
    await store.jobs.set_gallery_copy(job.id, 1_577_422_704_720_478_208)
    copied = await store.jobs.get(job.id)
    assert copied is not None and copied.gallery_message_id == 1_577_422_704_720_478_208
    cleared = await store.jobs.set_message(job.id, None)
    assert cleared is not None and cleared.message_id is None


async def test_a_one_shot_button_makes_one_live_job(store: Store) -> None:
    parent = await completed(store)
    u1 = Button("U1", "MJ::JOB::upsample::1::abc")
    first = await new_job(store, parent_id=parent.id, button=u1, one_shot=True)
    with pytest.raises(OneShotTaken) as taken:
        await new_job(store, parent_id=parent.id, button=u1, one_shot=True)
    assert taken.value.existing == first
    assert await store.jobs.live_one_shot(parent.id, "U1") == first
    assert len(await store.jobs.children_of(parent.id)) == 1, "the second insert left nothing behind"
    # Other buttons, other parents, and jobs that are not one-shot are not held by it.
    await new_job(store, parent_id=parent.id, button=Button("U2", "MJ::JOB::upsample::2::abc"), one_shot=True)
    await new_job(store, parent_id=parent.id, button=u1)
    other = await completed(store)
    await new_job(store, parent_id=other.id, button=u1, one_shot=True)
    # Still taken once the first is running or done.
    await store.jobs.mark_running(first.id, "task-u1", {})
    await store.jobs.finish(first.id, COMPLETED, expect=(RUNNING,))
    with pytest.raises(OneShotTaken):
        await new_job(store, parent_id=parent.id, button=u1, one_shot=True)


@pytest.mark.parametrize("status", sorted(FRUITLESS_STATES))
async def test_a_one_shot_that_came_to_nothing_frees_the_button(store: Store, status: str) -> None:
    parent = await completed(store)
    u1 = Button("U1", "U1")
    first = await new_job(store, parent_id=parent.id, button=u1, one_shot=True)
    await store.jobs.finish(first.id, status, expect=(QUEUED,), error="no", error_kind=FINISHERS[status])
    assert await store.jobs.live_one_shot(parent.id, "U1") is None
    again = await new_job(store, parent_id=parent.id, button=u1, one_shot=True)
    assert await store.jobs.live_one_shot(parent.id, "U1") == again
