"""Rows to records and back: the JSON columns and the job's reference, the same in every SQL dialect."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.jobs import Button, ErrorKind, JobBrief, JobRecord, KeptImage, Media, OneUseLink

# Columns that hold JSON, and what each holds.
JSON_COLUMNS = frozenset({"buttons", "media", "done_buttons", "extra_message_ids", "job_json", "prompts"})


def job_ref(identity: str, job_id: int) -> str:
    """The relay's reference for a job at its backend (replyRef, state) and in its callback path.

    The database identity is in it, so that a callback or a lookup made for another database's job #12
    (a database lost and started again) never lands on this one's #12.
    """
    return f"{identity}-{job_id}"


ERASED_PROMPT = "(removed)"


def erased(*, forget_prompt: bool) -> dict[str, Any]:
    """The fields a removed job keeps: no messages, no result links (and, for a purge, no prompt); the row itself
    stays, so quotas and the jobs made from it still add up."""
    fields: dict[str, Any] = {"message_id": None, "extra_message_ids": [], "gallery_message_id": None,
                              "image_url": None, "media": [], "preview_url": None, "job_json": None}
    if forget_prompt:
        fields.update(prompt=ERASED_PROMPT, button_prompt=None, buttons=[], error=None)
    return fields


def encode(name: str, value: Any) -> Any:
    """A field's value as its column stores it."""
    if name == "buttons":
        return json.dumps([button.to_json() for button in value], ensure_ascii=False)
    if name == "media":
        return json.dumps([item.to_json() for item in value], ensure_ascii=False)
    if name in {"done_buttons", "extra_message_ids", "prompts"}:
        return json.dumps(list(value), ensure_ascii=False)
    if name == "job_json":
        return None if value is None else json.dumps(value, ensure_ascii=False)
    if name == "error_kind":
        return None if value is None else str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def decode_job(row: Mapping[str, Any], identity: str) -> JobRecord:
    """A job row (any dialect's mapping of column → value) as a record."""
    data = dict(row)
    data["ref"] = data["ref"] or job_ref(identity, int(data["id"]))
    data["buttons"] = tuple(Button.from_json(b) for b in _json(data["buttons"], []))
    data["media"] = tuple(Media.from_json(m) for m in _json(data["media"], []))
    data["done_buttons"] = tuple(str(name) for name in _json(data["done_buttons"], []))
    data["extra_message_ids"] = tuple(int(i) for i in _json(data["extra_message_ids"], []))
    data["prompts"] = tuple(str(text) for text in _json(data["prompts"], []))
    data["job_json"] = _json(data["job_json"], None)
    data["published"] = bool(data["published"])
    data["simulated"] = bool(data["simulated"])
    kind = data["error_kind"]
    data["error_kind"] = ErrorKind(kind) if kind else None
    # The lease and the publish claim are the coordination's business alone (bot.store.claims).
    for private in ("one_shot", "lease_until", "publish_by", "publish_until"):
        data.pop(private, None)
    return JobRecord(**data)


# The columns a `JobBrief` is read from, in its fields' order.
BRIEF_COLUMNS = "id, owner_id, channel_id, message_id, error, status, claimed_by"
BRIEF_WIDTH = len(BRIEF_COLUMNS.split(","))


def decode_brief(row: Iterable[Any]) -> JobBrief:
    job_id, owner_id, channel_id, message_id, error, status, claimed_by = row
    return JobBrief(int(job_id), int(owner_id), int(channel_id), message_id, error, str(status),
                    None if claimed_by is None else int(claimed_by))


def decode_image(row: Mapping[str, Any]) -> KeptImage:
    return KeptImage(int(row["job_id"]), int(row["position"]), str(row["content_type"]), bytes(row["data"]),
                     str(row["token"]), float(row["kept_at"]))


def decode_link(row: Mapping[str, Any]) -> OneUseLink:
    return OneUseLink(str(row["token"]), int(row["job_id"]), int(row["member_id"]), float(row["created_at"]),
                      float(row["expires_at"]), None if row["used_at"] is None else float(row["used_at"]))


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value
