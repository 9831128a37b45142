"""pydantic's validation report as sentences an operator can act on: one per bad setting, each naming the
setting as it was given, saying what it must be and what it got (never a secret's value)."""

from __future__ import annotations

import re
import typing
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

MASK = "***"
# A value given for a setting is shown back, but not the user and password of a URL (https://user:pw@host).
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_REQUIRED = frozenset({"missing", "required"})


def names_of(field_name: str, field: FieldInfo) -> list[str]:
    """The environment names a field is read under, its own first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)] or [field_name]
    return [alias] if isinstance(alias, str) else [field_name]


def is_secret(field: FieldInfo) -> bool:
    return SecretStr in (field.annotation, *typing.get_args(field.annotation))


def sentences(exc: ValidationError, fields: dict[str, FieldInfo], given: Collection[str],
              secrets: Iterable[str], env_file: Path | None) -> list[str]:
    """One sentence per bad setting (a rule across settings: its own sentence), in pydantic's order."""
    found: dict[str, str] = {}
    for error in exc.errors():
        if not error["loc"]:
            found.setdefault("", str(error["msg"]).removeprefix("Value error, "))
            continue
        field_name = _field_of(str(error["loc"][0]), fields)
        if field_name in found:  # one setting, one sentence (a range is one rule, not two)
            continue
        field = fields[field_name]
        names = names_of(field_name, field)
        shown = next((name for name in names if name in given), names[0])
        found[field_name] = _sentence(error, shown, field, env_file)
    return [_masked(line, secrets) for line in found.values()]


def _field_of(loc: str, fields: dict[str, FieldInfo]) -> str:
    if loc in fields:
        return loc
    return next(name for name, field in fields.items() if loc in names_of(name, field))


def _sentence(error: ErrorDetails, shown: str, field: FieldInfo, env_file: Path | None) -> str:
    kind = error["type"]
    if kind in _REQUIRED:
        where = f"the environment or in {env_file}" if env_file is not None else "the environment"
        return f"setting {shown} is required (set it in {where})"
    rule = _rule(kind, str(error["msg"]), field)
    if is_secret(field):
        return f"{shown} {rule}"
    value = error.get("input")
    shown_value = _USERINFO.sub(MASK + "@", value) if isinstance(value, str) else value
    return f"{shown} {rule}, got {shown_value!r}"


def _rule(kind: str, message: str, field: FieldInfo) -> str:
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _range(field)
    if kind == "literal_error":
        return "must be one of " + ", ".join(str(choice) for choice in _choices(field.annotation))
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "setting":  # raised by our own validators, already a rule
        return message
    return f"is not valid ({message[:1].lower()}{message[1:]})"


def _range(field: FieldInfo) -> str:
    # Field(ge=..., le=...) keeps each bound as an annotated_types object with that one attribute.
    bounds = {name: getattr(rule, name) for rule in field.metadata for name in ("ge", "gt", "le", "lt")
              if getattr(rule, name, None) is not None}
    ge, gt, le, lt = (bounds.get(k) for k in ("ge", "gt", "le", "lt"))
    if ge is not None and le is not None:
        return f"must be between {ge:g} and {le:g}"
    lower = f"{ge:g} or more" if ge is not None else f"more than {gt:g}" if gt is not None else None
    upper = f"{le:g} or less" if le is not None else f"less than {lt:g}" if lt is not None else None
    return "must be " + " and ".join(part for part in (lower, upper) if part)


def _choices(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [choice for arg in typing.get_args(annotation) for choice in _choices(arg)]


def _masked(line: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret.strip():
            line = line.replace(secret, MASK)
    return line
