"""Rows to records and back: the JSON columns and the job's reference, the same in every SQL dialect."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

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


class DatabaseRow(Protocol):
    """A row as a driver hands it back (sqlite3.Row, asyncpg.Record): its columns' names, and its values in order,
    as a tuple's."""

    def keys(self) -> Iterable[str]: ...

    def __iter__(self) -> Iterator[Any]: ...


def decode_job(row: DatabaseRow | Mapping[str, Any], identity: str) -> JobRecord:
    """A job row (a driver's row, or a mapping of column → value) as a record."""
    columns = tuple(row.keys())
    values = row.values() if isinstance(row, Mapping) else row
    job: JobRecord = _new(JobRecord)
    for (setter, convert), value in zip(_plan(columns), values, strict=True):
        if setter is not None:
            setter(job, value if convert is None else convert(value))
    if not job.ref:
        _REF_SETTER(job, job_ref(identity, job.id))
    return job


# Reading a job is on every page of /jobs and every callback, and a record has over forty fields: calling the
# frozen dataclass's __init__ with them all as keywords cost more than all the rest of the decoding together.
# A record is therefore filled field by field through its slots, from a plan made once per column order.
_Setter = Callable[[JobRecord, Any], None]
_new = object.__new__
_FIELDS = {field.name: field for field in dataclasses.fields(JobRecord)}
_SETTERS: dict[str, _Setter] = {name: getattr(JobRecord, name).__set__ for name in _FIELDS}
_REF_SETTER = _SETTERS["ref"]
# Columns the record leaves out: the lease and the publish claim are the coordination's business alone
# (bot.store.claims), and one_shot serves an index only.
_PRIVATE = frozenset({"one_shot", "lease_until", "publish_by", "publish_until"})


def _items(value: Any) -> Any:
    """A JSON list column's items: stored as text, or handed back already decoded by a driver with a JSON type.
    An empty list's text, on most rows, needs no parse."""
    return () if value == "[]" else _json(value, ())


@functools.lru_cache(maxsize=1024)
def _buttons_of(text: str) -> tuple[Button, ...]:
    # Most jobs carry one of a few button sets (a grid's, an upscale's): each set's text is decoded once.
    # Buttons are frozen, so the records may share them.
    return tuple(Button.from_json(item) for item in json.loads(text))


def _buttons(value: Any) -> tuple[Button, ...]:
    if isinstance(value, str) and value not in ("", "[]"):
        return _buttons_of(value)
    return tuple(Button.from_json(item) for item in _items(value))


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "buttons": _buttons,
    "media": lambda value: tuple(Media.from_json(item) for item in _items(value)),
    "done_buttons": lambda value: tuple(str(name) for name in _items(value)),
    "extra_message_ids": lambda value: tuple(int(i) for i in _items(value)),
    "prompts": lambda value: tuple(str(text) for text in _items(value)),
    "job_json": lambda value: _json(value, None),
    "published": bool,
    "simulated": bool,
    "error_kind": lambda kind: ErrorKind(kind) if kind else None,
}


@functools.lru_cache(maxsize=16)
def _plan(columns: tuple[str, ...]) -> tuple[tuple[_Setter | None, Callable[[Any], Any] | None], ...]:
    """For each column in this order: the record's slot it fills (None: a private column) and its conversion."""
    unknown = set(columns) - set(_FIELDS) - _PRIVATE
    missing = set(_FIELDS) - set(columns)
    if unknown or missing:
        raise ValueError(f"not a jobs row: unknown columns {sorted(unknown)}, missing {sorted(missing)}")
    return tuple((None, None) if name in _PRIVATE else (_SETTERS[name], _CONVERTERS.get(name)) for name in columns)


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
