"""What a finished simulated job carries, by what made it: a grid or an image (imagine, blend, the buttons), a
video (Animate, Extend), Midjourney's four prompts (describe), or Midjourney's seed reply (seed_async)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from .images import render_mp4, render_png
from .jobs import MENTION, IdMaker, attachment, file_name, final_content, is_single_image, is_video, next_buttons

__all__ = ["Result", "described_text", "result_of", "seed_of"]

# Drawn from by a hash of the image's link, so one image is always described the same way.
_SUBJECTS = ("a lighthouse on a rocky shore", "a fox in tall grass", "a small boat on a calm lake",
             "an old stone bridge in fog", "a city street after rain", "a field of sunflowers")
_STYLES = ("soft watercolour, muted teal and amber", "35mm photograph, dramatic evening light",
           "oil painting, thick brush strokes", "cinematic still, moody and quiet")


@dataclass
class Result:
    """What the job's body gains as it completes, and the files it serves from then on (by name)."""

    fields: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def described_text(image_url: str) -> str:
    """Midjourney's describe text for an image: four numbered prompts with a blank line between, marked as
    simulated so no one mistakes them for Midjourney's."""
    digest = hashlib.sha256(image_url.encode()).digest()
    subject = _SUBJECTS[digest[0] % len(_SUBJECTS)]
    return "\n\n".join(
        f"{n}\ufe0f\u20e3 {subject}, simulated description {n}, {_STYLES[(digest[1] + n) % len(_STYLES)]} --ar 1:1"
        for n in range(1, 5)
    )


def seed_of(jobid: str) -> int:
    """The seed a simulated job was drawn with: fixed per job, within Midjourney's 0..4294967295."""
    return int.from_bytes(hashlib.sha256(f"seed:{jobid}".encode()).digest()[:4], "big")


async def result_of(job: dict[str, Any], root: str, ids: IdMaker, image_bytes: int | None) -> Result:
    """The result of this job, its files served from root (scheme://host)."""
    verb = job.get("verb")
    if verb == "describe":
        # Midjourney answers a describe with an embed: its text, the image it was given; no content, no buttons.
        embed = {"type": "rich", "description": described_text(str(job.get("describeUrl") or job["jobid"])),
                 "image": {"url": job.get("describeUrl")}}
        return Result({"content": "", "embeds": [embed], "buttons": []})
    if verb == "seed_async":
        # Midjourney's reply to a seed request (the ✉️ reaction): the job's prompt, its id and its seed.
        parent = str(job.get("parentJobId") or "")
        midjourney_id = uuid.UUID(bytes=hashlib.sha256(parent.encode()).digest()[:16])
        reply = f"**{job.get('prompt', '')}** - {MENTION}\n**Job ID**: {midjourney_id}\n**seed** {seed_of(parent)}"
        return Result({"content": reply, "buttons": []})
    return await _media(job, root, ids, image_bytes)


async def _media(job: dict[str, Any], root: str, ids: IdMaker, image_bytes: int | None) -> Result:
    jobid = job["jobid"]
    button = job.get("button")
    if is_video(button):
        mp4 = await asyncio.to_thread(render_mp4, jobid, 128, 12, image_bytes)
        name = file_name(jobid, "mp4")
        made = attachment(root, name, len(mp4), 128, ids.snowflake(), content_type="video/mp4")
        files = {name: mp4}
    else:
        single = is_single_image(button)
        side = 256 if single else 128
        if image_bytes:
            png, side = await asyncio.to_thread(render_png, jobid, side, not single, image_bytes)
        else:
            png, side = render_png(jobid, side, not single, None)
        name = file_name(jobid)
        made = attachment(root, name, len(png), side, ids.snowflake())
        files = {name: png}
    fields = {"content": final_content(job.get("prompt", ""), button), "buttons": next_buttons(button),
              "attachments": [made]}
    return Result(fields, files)
