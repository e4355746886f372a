"""Flow documents: their JSON Schema, validation with JSON paths, and the parsed form."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation

from latchflow.flows import expressions
from latchflow.plugin.errors import ErrorDetail, ValidationError
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, RetryPolicy

SCHEMA_ID = "https://latchflow.dev/schema/flow.json"
EXPRESSION = {"type": "string", "pattern": r"\{\{.*\}\}", "description": "a {{ ... }} expression"}

RETRY_SCHEMA: JSON = {
    "type": "object",
    "description": "Overrides the action's retry policy for this step",
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
        "initial_delay": {"type": "number", "minimum": 0},
        "multiplier": {"type": "number", "minimum": 1},
        "max_delay": {"type": "number", "minimum": 0},
        "jitter": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
}

BASE_SCHEMA: JSON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "latchflow flow",
    "type": "object",
    "required": ["id", "name", "version", "trigger", "steps"],
    "properties": {
        "$schema": {"type": "string"},
        "id": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
            "description": "Unique flow id: lowercase letters, digits, '-' and '_'",
        },
        "name": {"type": "string", "minLength": 1, "description": "Human-readable name"},
        "description": {"type": "string"},
        "version": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2147483647,
            "description": "Raise it on every change",
        },
        "enabled": {"type": "boolean", "default": True},
        "trigger": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "Trigger key, e.g. keyvox.booking_created",
                },
                "connection": {"type": "string", "description": "Connection id the trigger uses"},
                "input": {"type": "object", "description": "The trigger's settings"},
                "poll": {"type": "boolean", "description": "Poll even if webhooks deliver events"},
                "catch_up": {"enum": ["skip", "once"]},
            },
            "additionalProperties": False,
        },
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "action"],
                "properties": {
                    "id": {
                        "type": "string",
                        "pattern": "^[a-z_][a-z0-9_]{0,63}$",
                        "description": "Step id, used as steps.<id> in later expressions",
                    },
                    "action": {"type": "string", "description": "Action key, e.g. http.request"},
                    "connection": {"type": "string", "description": "Connection id the step uses"},
                    "input": {"type": "object", "description": "The action's input"},
                    "if": {
                        "type": ["string", "boolean"],
                        "description": "Run the step only when this expression is true",
                    },
                    "retry": RETRY_SCHEMA,
                },
                "additionalProperties": False,
            },
        },
        "output": {"description": "The run's output (expressions allowed); default: last step's"},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Step:
    id: str
    action: str
    input: JSON
    connection: str | None = None
    condition: str | bool | None = None
    retry: JSON | None = None

    def retry_policy(self, default: RetryPolicy) -> RetryPolicy:
        if not self.retry:
            return default
        return RetryPolicy(**{**default.__dict__, **self.retry})


@dataclass(frozen=True)
class Flow:
    """A validated flow document, parsed."""

    id: str
    name: str
    version: int
    trigger_type: str
    trigger_input: JSON
    trigger_connection: str | None
    steps: list[Step]
    document: JSON = field(repr=False)

    @classmethod
    def parse(cls, document: JSON) -> Flow:
        trigger = document["trigger"]
        return cls(
            id=document["id"],
            name=document["name"],
            version=document["version"],
            trigger_type=trigger["type"],
            trigger_input=trigger.get("input") or {},
            trigger_connection=trigger.get("connection"),
            steps=[
                Step(
                    id=s["id"],
                    action=s["action"],
                    input=s.get("input") or {},
                    connection=s.get("connection"),
                    condition=s.get("if"),
                    retry=s.get("retry"),
                )
                for s in document["steps"]
            ],
            document=document,
        )

    @property
    def output_template(self) -> Any:
        return self.document.get("output")


def json_path(parts: Iterable[str | int], root: str = "$") -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def contains_expression(value: Any) -> bool:
    """Whether a JSON value holds a {{ ... }} expression anywhere (its value is known at run time)."""
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_expression(v) for v in value)
    return False


STATIC_CHECKS = ("required", "additionalProperties", "unevaluatedProperties")


def schema_errors(validator: Draft202012Validator, instance: Any, root: str) -> list[ErrorDetail]:
    """Violations of a schema, with JSON paths; values that are expressions are checked later."""
    details = []
    for error in validator.iter_errors(instance):
        if error.validator not in STATIC_CHECKS and contains_expression(error.instance):
            continue
        details.append(ErrorDetail(_error_path(error, root), error.message))
    return sorted(details, key=lambda d: d.path)


def _error_path(error: SchemaViolation, root: str) -> str:
    parts: list[str | int] = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if error.message.startswith(f"{p!r} ")]
        if missing:
            parts.append(missing[0])
    return json_path(parts, root)


_BASE_VALIDATOR = Draft202012Validator(BASE_SCHEMA)


def validate_flow(document: Any, registry: Registry) -> Flow:
    """The parsed flow, or ValidationError listing every problem with its JSON path."""
    errors = schema_errors(_BASE_VALIDATOR, document, "$")
    if errors:
        raise ValidationError(errors)
    trigger = document["trigger"]
    trigger_def = registry.triggers.get(trigger["type"])
    if trigger_def is None:
        errors.append(_unknown("$.trigger.type", "trigger", trigger["type"], registry.triggers))
    else:
        errors += schema_errors(
            Draft202012Validator(trigger_def.input_schema),
            trigger.get("input") or {},
            "$.trigger.input",
        )
        errors += _connection_errors(trigger_def.connection, trigger, "$.trigger")
    seen: dict[str, int] = {}
    all_ids = {s["id"]: i for i, s in enumerate(document["steps"])}
    for index, step in enumerate(document["steps"]):
        where = f"$.steps[{index}]"
        if step["id"] in seen:
            errors.append(
                ErrorDetail(
                    f"{where}.id",
                    f"duplicate step id {step['id']!r} (also $.steps[{seen[step['id']]}])",
                )
            )
        action = registry.actions.get(step["action"])
        if action is None:
            errors.append(_unknown(f"{where}.action", "action", step["action"], registry.actions))
        else:
            errors += schema_errors(
                Draft202012Validator(action.input_schema), step.get("input") or {}, f"{where}.input"
            )
            errors += _connection_errors(action.connection, step, where)
            if action.check_input is not None:
                errors += action.check_input(step.get("input") or {}, f"{where}.input")
        for key in ("input", "if"):
            if key in step:
                errors += expressions.check(step[key], f"{where}.{key}")
                errors += _reference_errors(step[key], f"{where}.{key}", index, seen, all_ids)
        seen.setdefault(step["id"], index)
    if "output" in document:
        errors += expressions.check(document["output"], "$.output")
        errors += _reference_errors(document["output"], "$.output", len(all_ids), seen, all_ids)
    if errors:
        raise ValidationError(errors)
    return Flow.parse(document)


def _connection_errors(vendor: str | None, item: JSON, where: str) -> list[ErrorDetail]:
    if vendor is None and "connection" in item:
        return [ErrorDetail(f"{where}.connection", "this needs no connection; remove the field")]
    return []


def _reference_errors(
    template: Any, where: str, index: int, earlier: dict[str, int], all_ids: dict[str, int]
) -> list[ErrorDetail]:
    errors = []
    for ref in sorted(expressions.referenced_steps(template)):
        if ref in earlier:
            continue
        if ref in all_ids:
            message = (
                f"refers to step {ref!r}, which runs later ($.steps[{all_ids[ref]}]);"
                " a step can only use the outputs of steps before it"
            )
        else:
            message = f"refers to step {ref!r}, which does not exist"
            close = difflib.get_close_matches(ref, list(earlier), n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        errors.append(ErrorDetail(where, message))
    return errors


def _unknown(path: str, kind: str, key: str, known: dict[str, Any]) -> ErrorDetail:
    message = f"unknown {kind} {key!r}"
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.8)
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        message += f"; `latchflow plugins` lists the installed {kind}s"
    return ErrorDetail(path, message)


def load_document(path: Path) -> Any:
    """A flow file's JSON, or ValidationError naming the line and column of a syntax error."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValidationError.at(
            f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}"
        ) from exc


def full_schema(registry: Registry) -> JSON:
    """The flow schema with every installed trigger's and action's input schema, by key."""
    schema: JSON = json.loads(json.dumps(BASE_SCHEMA))
    step = schema["properties"]["steps"]["items"]
    step["properties"]["action"]["enum"] = sorted(registry.actions)
    step["allOf"] = [
        {
            "if": {"properties": {"action": {"const": key}}, "required": ["action"]},
            "then": {"properties": {"input": _allow_expressions(action.input_schema)}},
        }
        for key, action in sorted(registry.actions.items())
    ]
    trigger = schema["properties"]["trigger"]
    trigger["properties"]["type"]["enum"] = sorted(registry.triggers)
    trigger["allOf"] = [
        {
            "if": {"properties": {"type": {"const": key}}, "required": ["type"]},
            "then": {"properties": {"input": _allow_expressions(t.input_schema)}},
        }
        for key, t in sorted(registry.triggers.items())
    ]
    return schema


def _allow_expressions(schema: Any) -> Any:
    """A copy of a schema where every property may also be a {{ ... }} expression."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items()}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: {"anyOf": [_allow_expressions(sub), EXPRESSION]} if isinstance(sub, dict) else sub
            for name, sub in schema["properties"].items()
        }
    return out
