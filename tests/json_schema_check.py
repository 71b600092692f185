"""A focused JSON Schema checker for the webhook body's schema (jsonschema is not a
dependency): the keywords the schema uses, strictly, so that an undocumented field fails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_KEYWORDS = {
    # annotations
    "$schema", "$id", "$defs", "$comment", "title", "description", "examples",
    # assertions and applicators this checker implements
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "minItems", "minimum", "minLength", "format", "$ref", "allOf", "if", "then", "else", "not",
}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    match kind:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "null":
            return value is None
    raise AssertionError(f"schema type {kind!r} not handled by this checker")


def _date_time(text: str) -> bool:
    if "T" not in text.upper():
        return False
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return at.tzinfo is not None


def schema_errors(  # noqa: PLR0912  # a branch per keyword reads best
    value: Any, schema: Any, root: Any, path: str = "$", *, strict: bool = False
) -> list[str]:
    """Where ``value`` breaks ``schema`` (a subset of draft 2020-12: every keyword the
    webhook schema uses; any other keyword fails the check rather than being ignored).
    ``strict``: objects with declared ``properties`` may hold no other key."""
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: nothing is allowed here"]
    unknown = set(schema) - _KEYWORDS
    assert not unknown, f"schema keywords not handled by this checker: {unknown}"
    errors: list[str] = []

    def sub(v: Any, s: Any, p: str = path) -> list[str]:
        return schema_errors(v, s, root, p, strict=strict)

    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        errors += sub(value, target)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            return [*errors, f"{path}: {value!r} is not {' or '.join(kinds)}"]
    if "enum" in schema and not any(value == e and type(value) is type(e) for e in schema["enum"]):
        errors.append(f"{path}: {value!r} not one of {schema['enum']}")
    if "const" in schema and not (
        value == schema["const"] and type(value) is type(schema["const"])
    ):
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "not" in schema and not sub(value, schema["not"]):
        errors.append(f"{path}: matches what is forbidden: {schema['not']}")
    for part in schema.get("allOf", []):
        errors += sub(value, part)
    if "if" in schema:
        branch = "then" if not sub(value, schema["if"]) else "else"
        if branch in schema:
            errors += sub(value, schema[branch])
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: too short")
        if schema.get("format") == "date-time" and not _date_time(value):
            errors.append(f"{path}: {value!r} is not an RFC 3339 date-time")
    if _is(value, "integer") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += sub(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        errors += [f"{path}: {k} missing" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errors += sub(v, props[k], f"{path}.{k}")
            elif "additionalProperties" in schema:
                errors += sub(v, schema["additionalProperties"], f"{path}.{k}")
            elif strict and props and schema.get("type") == "object":
                errors.append(f"{path}.{k}: not documented in the schema")
    return errors
