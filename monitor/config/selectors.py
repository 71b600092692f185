"""Watch-rule fields in the configuration: selectors and severities parsed by the rule language
(``monitor.rules.spec``), and its errors placed on the exact field they concern.

``Selector.parse`` says ``san[1]: invalid regular expression ...``; here that becomes a problem
at ``<rule>.match.san[1].regex``, so that the file and line can be named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import PlainValidator

from monitor.config.fields import Shown
from monitor.config.problems import Loc, Problem, error, validation_error
from monitor.core.errors import ConfigError
from monitor.core.findings import Severity
from monitor.rules.spec import EXTENSIONS, Selector

_INDEX = re.compile(r"\[([0-9]+)\]")


def parse_severity(value: Any) -> Severity:
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str):
        names = ", ".join(str(s) for s in Severity)
        raise error(f"a severity is one of {names}")
    try:
        return Severity.parse(value)
    except ConfigError as e:
        raise error(str(e)) from None


def parse_selector(value: Any) -> Selector:
    if isinstance(value, Selector):
        return value
    try:
        return Selector.parse(value)
    except ConfigError as e:
        first = Problem(*locate(value, str(e)))
    # Selector.parse stops at the first problem: parse each field alone to find them all.
    problems = [p for part in _parts(value) if (p := _problem(part)) is not None]
    raise validation_error("Selector", problems or [first]) from None


def _parts(value: Any) -> list[dict[Any, Any]]:
    """``{a: 1, extensions: {x: 2, y: 3}}`` -> ``{a: 1}``, ``{extensions: {x: 2}}``, ..."""
    if not isinstance(value, Mapping) or not value:
        return []
    parts: list[dict[Any, Any]] = []
    for key, item in value.items():
        if key == EXTENSIONS and isinstance(item, Mapping) and item:
            parts += [{key: {ext: patterns}} for ext, patterns in item.items()]
        else:
            parts.append({key: item})
    return parts


def _problem(part: dict[Any, Any]) -> Problem | None:
    try:
        Selector.parse(part)
    except ConfigError as e:
        return Problem(*locate(part, str(e)))
    return None


def parse_optional_selector(value: Any) -> Selector | None:
    return None if value is None else parse_selector(value)


def locate(doc: Any, message: str) -> tuple[Loc, str]:
    """Split a ``field.path[i]: what`` message into the path (checked against ``doc``, where
    keys may contain dots, as OIDs do) and the rest. No known prefix: ``((), message)``."""
    loc: list[str | int] = []
    node = doc
    rest = message
    while True:
        step = _key_step(node, rest) if isinstance(node, Mapping) else None
        if step is None:
            return (), message
        key, rest = step
        loc.append(str(key))
        node = node[key]
        while (m := _INDEX.match(rest)) and isinstance(node, Sequence):
            i = int(m.group(1))
            if i >= len(node) or isinstance(node, str):
                return (), message
            loc.append(i)
            node = node[i]
            rest = rest[m.end() :]
        if rest.startswith(": "):
            if _is_regex_object(node):
                loc.append("regex")  # the expression, not the {regex: ...} around it
            return tuple(loc), rest[2:]
        if not rest.startswith("."):
            return (), message
        rest = rest[1:]


def _key_step(node: Mapping[Any, Any], text: str) -> tuple[Any, str] | None:
    """The key of ``node`` that ``text`` starts with (the longest), and what follows it."""
    for key in sorted(node, key=lambda k: len(str(k)), reverse=True):
        name = str(key)
        if text.startswith(name) and text[len(name) : len(name) + 1] in (":", ".", "["):
            return key, text[len(name) :]
    return None


def _is_regex_object(node: Any) -> bool:
    return isinstance(node, Mapping) and set(node) == {"regex"} and isinstance(node["regex"], str)


RuleSelector = Annotated[Selector, PlainValidator(parse_selector), Shown("[selector](#selectors)")]
OptionalSelector = Annotated[
    Selector | None, PlainValidator(parse_optional_selector), Shown("[selector](#selectors)")
]
SeverityName = Annotated[Severity, PlainValidator(parse_severity), Shown("severity")]
