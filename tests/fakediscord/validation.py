"""Check request bodies against Discord's OpenAPI schemas, plus the limits Discord enforces beyond them."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .models import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    IS_VOICE_MESSAGE,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
)

SUBSET_PATH = Path(__file__).with_name("discord-openapi.subset.json")
BASE_URI = "urn:discord-openapi-subset"

# Places where Discord accepts more than its own spec says and discord.py relies on it. Each entry replaces
# the schema at a JSON pointer; keep the list short and say why, so a real spec violation is never hidden.
LENIENCIES: tuple[tuple[str, dict[str, Any], str], ...] = (
    (
        "/components/schemas/SnowflakeType",
        {
            "anyOf": [
                {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
                {"type": "integer", "minimum": 0},
            ]
        },
        "Discord parses snowflakes from JSON integers too; discord.py sends ints, e.g. attachments[].id "
        "(the files[N] index) and recipient_id.",
    ),
)

# Flags a bot may set when sending a message; anything else Discord rejects.
SENDABLE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2

BUTTON, ACTION_ROW, TEXT_INPUT, LABEL = 2, 1, 4, 18
SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
LINK_STYLE, PREMIUM_STYLE = 5, 6


@dataclass(frozen=True)
class Problem:
    """One rejected field: where in the body, Discord's error code, and a readable message."""

    path: tuple[str | int, ...]
    code: str
    message: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.path) or "<body>"
        return f"{where}: {self.message} ({self.code})"


@dataclass(frozen=True)
class Operation:
    template: str
    method: str  # lower case, as in the spec
    operation_id: str
    pattern: re.Pattern[str]
    request_pointer: str | None  # JSON pointer to the application/json request schema
    response_pointers: Mapping[int, str]  # status -> JSON pointer to the application/json response schema


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}$")


class SpecValidator:
    """Routes a method and path to its spec operation and validates JSON against that operation."""

    def __init__(self, spec_path: Path = SUBSET_PATH) -> None:
        spec: dict[str, Any] = json.loads(spec_path.read_text(encoding="utf-8"))
        for pointer, replacement, _why in LENIENCIES:
            _set_pointer(spec, pointer, replacement)
        # OpenAPI 3.1 schemas are JSON Schema 2020-12; registering the whole document under one URI makes
        # every "#/components/schemas/..." ref resolve against it, wherever the validation starts.
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(BASE_URI, resource)
        self.spec = spec
        operations: list[Operation] = []
        for template, item in spec["paths"].items():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                base = f"/paths/{_escape(template)}/{method}"
                request = None
                if "application/json" in operation.get("requestBody", {}).get("content", {}):
                    request = f"{base}/requestBody/content/application~1json/schema"
                responses = {
                    int(status): f"{base}/responses/{status}/content/application~1json/schema"
                    for status, response in operation.get("responses", {}).items()
                    if "application/json" in response.get("content", {})
                }
                operations.append(
                    Operation(
                        template=template,
                        method=method,
                        operation_id=operation.get("operationId", ""),
                        pattern=_template_regex(template),
                        request_pointer=request,
                        response_pointers=responses,
                    )
                )
        # Literal segments beat parameters ("/messages/@original" over "/messages/{message_id}").
        operations.sort(key=lambda op: -sum(not seg.startswith("{") for seg in op.template.split("/")))
        self.operations = operations
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    @functools.cache
    def shared(cls) -> SpecValidator:
        """One validator per process: loading and compiling the schemas is the slow part, and it is stateless."""
        return cls()

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation serving `method path` (path after /api/v10), with its path parameters."""
        method = method.lower()
        for operation in self.operations:
            if operation.method != method:
                continue
            found = operation.pattern.match(path)
            if found:
                return operation, found.groupdict()
        return None

    def validate_request(self, operation: Operation, body: Any) -> list[Problem]:
        if operation.request_pointer is None:
            return []
        return self._validate(operation.request_pointer, body)

    def validate_response(self, operation: Operation, status: int, body: Any) -> list[Problem]:
        pointer = operation.response_pointers.get(status)
        return [] if pointer is None else self._validate(pointer, body)

    def _validate(self, pointer: str, body: Any) -> list[Problem]:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator({"$ref": f"{BASE_URI}#{pointer}"}, registry=self._registry)
            self._validators[pointer] = validator
        problems: list[Problem] = []
        for error in validator.iter_errors(body):
            problems.extend(_explain(error))
        return problems


def _set_pointer(document: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node: Any = document
    for part in parents:
        node = node[part]
    if last in node:  # a refreshed spec may have fixed it; then the leniency is moot, not an error
        node[last] = copy.deepcopy(value)


# jsonschema keyword -> the code Discord puts in "Invalid Form Body" errors.
_CODES = {
    "maxLength": "BASE_TYPE_MAX_LENGTH",
    "minLength": "BASE_TYPE_MIN_LENGTH",
    "maxItems": "BASE_TYPE_MAX_LENGTH",
    "minItems": "BASE_TYPE_MIN_LENGTH",
    "required": "BASE_TYPE_REQUIRED",
    "enum": "BASE_TYPE_CHOICES",
    "const": "BASE_TYPE_CHOICES",
    "type": "BASE_TYPE_BAD_TYPE",
    "maximum": "NUMBER_TYPE_MAX",
    "minimum": "NUMBER_TYPE_MIN",
}


def _explain(error: ValidationError) -> list[Problem]:
    """Turn a jsonschema error into the specific field errors a reader needs.

    The spec models components, callbacks and nullable fields as oneOf/anyOf unions whose variants are told
    apart by `type` (or by being null). jsonschema reports only "is not valid under any of the given
    schemas"; descending into the one variant whose discriminator matched gives "label: too long" instead.
    """
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        candidates = [subs for subs in branches.values() if not any(_discriminated_out(s) for s in subs)]
        if len(candidates) == 1:
            return [problem for sub in candidates[0] for problem in _explain(sub)]
        if error.validator == "oneOf" and not candidates:
            return [_problem(error, "matches no variant")]
    if error.validator == "required":
        # Discord reports a missing field at the field's own path.
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return [
            Problem((*error.absolute_path, name), "BASE_TYPE_REQUIRED", "This field is required") for name in missing
        ] or [_problem(error)]
    return [_problem(error)]


def _discriminated_out(error: ValidationError) -> bool:
    """True when this error shows the variant is not the one meant: wrong `type` tag, or null vs not."""
    path = list(error.relative_path)
    if not path and error.validator == "type":
        return True
    return path == ["type"] and error.validator in ("enum", "const", "type")


def _problem(error: ValidationError, note: str | None = None) -> Problem:
    keyword = str(error.validator)
    if keyword in ("maxLength", "maxItems"):
        # Discord's own wording, which also keeps a 4000-character value out of the report.
        message = f"Must be {error.validator_value} or fewer in length."
    elif keyword in ("minLength", "minItems"):
        message = f"Must be {error.validator_value} or more in length."
    else:
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    if note is not None:
        message = f"{message} ({note})"
    return Problem(tuple(error.absolute_path), _CODES.get(keyword, "INVALID"), message)


def form_errors(problems: list[Problem]) -> dict[str, Any]:
    """Nest problems the way Discord's 50035 "Invalid Form Body" answer does."""
    root: dict[str, Any] = {}
    for problem in problems:
        node = root
        for part in problem.path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": problem.code, "message": problem.message})
    return root


# --- Limits Discord enforces that the spec does not express --------------------------------------------


def message_limits(body: Mapping[str, Any], prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """Checks for any message body (create, edit, webhook, interaction response data)."""
    problems: list[Problem] = []
    content = body.get("content")
    if isinstance(content, str) and len(content) > 2000:
        # The spec allows 4000 (the Nitro limit for users); bots are held to 2000.
        problems.append(Problem((*prefix, "content"), "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."))
    flags = body.get("flags")
    if isinstance(flags, int) and flags & ~SENDABLE_FLAGS:
        problems.append(Problem((*prefix, "flags"), "MESSAGE_FLAGS_INVALID", f"Invalid flags {flags}"))
    components = body.get("components")
    if isinstance(components, list):
        v2 = isinstance(flags, int) and bool(flags & IS_COMPONENTS_V2)
        problems.extend(component_limits(components, v2=v2, prefix=(*prefix, "components")))
    embeds = body.get("embeds")
    if isinstance(embeds, list):
        if len(embeds) > 10:
            problems.append(Problem((*prefix, "embeds"), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."))
        total = sum(_embed_text_length(embed) for embed in embeds if isinstance(embed, Mapping))
        if total > 6000:
            problems.append(
                Problem(
                    (*prefix, "embeds"),
                    "MAX_EMBED_SIZE_EXCEEDED",
                    f"Embed size exceeds maximum size of 6000 ({total} characters)",
                )
            )
    return problems


def _embed_text_length(embed: Mapping[str, Any]) -> int:
    def text(value: Any) -> int:
        return len(value) if isinstance(value, str) else 0

    total = text(embed.get("title")) + text(embed.get("description"))
    for key in ("footer", "author"):
        part = embed.get(key)
        if isinstance(part, Mapping):
            total += text(part.get("text")) + text(part.get("name"))
    for field_ in embed.get("fields") or []:
        if isinstance(field_, Mapping):
            total += text(field_.get("name")) + text(field_.get("value"))
    return total


def component_limits(
    components: list[Any], *, v2: bool, prefix: tuple[str | int, ...] = ("components",)
) -> list[Problem]:
    problems: list[Problem] = []
    if not v2:
        if len(components) > 5:
            problems.append(Problem(prefix, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
        for index, row in enumerate(components):
            if isinstance(row, Mapping) and row.get("type") != ACTION_ROW:
                problems.append(
                    Problem(
                        (*prefix, index, "type"),
                        "COMPONENT_INVALID_TYPE",
                        "Only action rows are allowed at the top level without the IS_COMPONENTS_V2 flag",
                    )
                )
    seen: dict[str, tuple[str | int, ...]] = {}
    for path, component in _walk(components, prefix):
        kind = component.get("type")
        if kind == ACTION_ROW:
            children = [c for c in component.get("components") or [] if isinstance(c, Mapping)]
            if len(children) > 5:
                problems.append(Problem((*path, "components"), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
            if any(c.get("type") in SELECT_TYPES for c in children) and len(children) > 1:
                problems.append(
                    Problem(
                        (*path, "components"),
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "A select menu must be alone in its action row",
                    )
                )
        if kind == BUTTON:
            problems.extend(_button_limits(component, path))
        custom_id = component.get("custom_id")
        if isinstance(custom_id, str):
            if len(custom_id) > 100:
                problems.append(
                    Problem((*path, "custom_id"), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
                )
            if custom_id in seen:
                problems.append(
                    Problem(
                        (*path, "custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        f"Component custom id cannot be duplicated ({custom_id!r})",
                    )
                )
            seen[custom_id] = path
    return problems


def _button_limits(button: Mapping[str, Any], path: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    label = button.get("label")
    if isinstance(label, str) and len(label) > 80:
        problems.append(Problem((*path, "label"), "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."))
    style = button.get("style")
    if style == LINK_STYLE:
        if not button.get("url"):
            problems.append(Problem((*path, "url"), "BASE_TYPE_REQUIRED", "A link button requires a url"))
        if button.get("custom_id") is not None:
            problems.append(
                Problem((*path, "custom_id"), "BUTTON_LINK_CUSTOM_ID", "A link button cannot have a custom_id")
            )
    elif style != PREMIUM_STYLE:
        if not button.get("custom_id"):
            problems.append(
                Problem((*path, "custom_id"), "BASE_TYPE_REQUIRED", "A non-link button requires a custom_id")
            )
        if button.get("url") is not None:
            problems.append(Problem((*path, "url"), "BUTTON_URL_NOT_ALLOWED", "Only link buttons have a url"))
    if style != PREMIUM_STYLE and not label and not button.get("emoji"):
        problems.append(
            Problem((*path, "label"), "BUTTON_LABEL_OR_EMOJI_REQUIRED", "A button needs a label or an emoji")
        )
    return problems


def _walk(
    components: list[Any], prefix: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every component in a (possibly nested, components v2) tree, with its body path."""
    for index, component in enumerate(components):
        if not isinstance(component, Mapping):
            continue
        path = (*prefix, index)
        yield path, component
        children = component.get("components")
        if isinstance(children, list):
            yield from _walk(children, (*path, "components"))
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, Mapping):
                yield (*path, key), child
                nested = child.get("components")
                if isinstance(nested, list):
                    yield from _walk(nested, (*path, key, "components"))


def modal_limits(data: Mapping[str, Any], prefix: tuple[str | int, ...] = ("data",)) -> list[Problem]:
    problems: list[Problem] = []
    components = data.get("components")
    if isinstance(components, list):
        if len(components) > 5:
            problems.append(Problem((*prefix, "components"), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
        problems.extend(component_limits(components, v2=True, prefix=(*prefix, "components")))
    return problems
