"""The options of the settings model, as the reference shows them: path, type, default, text.

Everything here is read from what the model declares: the fields and their nesting, the
descriptions on the fields (``Field(description=...)``), the notes of the fields that hold a
section (``json_schema_extra={"note": ...}``), bounds (``Field(ge=..., le=...)``), durations
(``durations.Duration``), and the words for a validated type (``fields.Shown``). A field
without a description, or whose validator replaces its type without saying what it takes, is
refused rather than described by a guess.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import annotated_types
from pydantic import PlainValidator, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from monitor.config.base import ConfigModel
from monitor.config.durations import Duration, format_duration
from monitor.config.fields import Shown
from monitor.config.models import Settings
from monitor.core.findings import FindingKind, Severity
from monitor.rules.spec import Selector


@dataclass(frozen=True)
class Option:
    path: str  # e.g. logs[].poll_interval
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    path: str  # e.g. alerts.sinks[]
    model: type[ConfigModel]
    options: tuple[Option, ...]
    note: str  # of the field that holds the section


def sections(root: type[ConfigModel] = Settings) -> list[Section]:
    """Every model of the configuration as a section, in file order (a list of models, such
    as ``alerts.sinks``, right after the section that holds it)."""
    out: list[Section] = []
    for name, info in root.model_fields.items():
        sub = model_of(info.annotation)
        if sub is None:
            raise ValueError(f"{name}: a top-level option must be a section (a model)")
        out += _sections(child(name, info.annotation), sub, note_of(info))
    return out


def option_paths(root: type[ConfigModel] = Settings) -> list[str]:
    """The path of every option of the model, e.g. ``alerts.sinks[].group_window``."""
    return [o.path for s in sections(root) for o in s.options]


def note_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    note = extra.get("note", "") if isinstance(extra, dict) else ""
    if not isinstance(note, str):
        raise TypeError(f"a section note is a string, not {note!r}")
    return note


def _sections(path: str, model: type[ConfigModel], note: str) -> list[Section]:
    options: list[Option] = []
    nested: list[Section] = []
    env_of = {env: value for value, env in model.env_pairs}
    for name, info in model.model_fields.items():
        option_path = f"{path}.{name}"
        sub = model_of(info.annotation)
        if sub is not None:
            nested += _sections(child(option_path, info.annotation), sub, note_of(info))
        elif note_of(info):
            raise ValueError(f"{option_path}: a note is for a field that holds a section")
        options.append(_option(option_path, name, info, env_of))
    return [Section(path, model, tuple(options), note), *nested]


def child(path: str, annotation: Any) -> str:
    return f"{path}[]" if typing.get_origin(_bare(annotation)) is tuple else path


def anchor(path: str) -> str:
    """GitHub's anchor of a heading ``### `path` ``."""
    return re.sub(r"[^a-z0-9 _-]", "", path.lower()).replace(" ", "-")


def _option(path: str, name: str, info: FieldInfo, env_of: Mapping[str, str]) -> Option:
    if name in env_of:
        if info.description:
            raise ValueError(f"{path}: an environment field's description is generated")
        value = env_of[name]
        text = (
            f"The name of an environment variable holding `{value}`, read at start (unset or "
            f"empty is an error). Give `{value}` or `{name}`, not both."
        )
    else:
        text = info.description or ""
        if not text:
            raise ValueError(f"{path}: no description: give the field Field(description=...)")
    sub = model_of(info.annotation)
    if sub is None:
        kind = _type_of(path, info)
    else:
        nested = child(path, info.annotation)
        kind = "list" if nested.endswith("[]") else "mapping"
        kind += f", see [`{nested}`](#{anchor(nested)})"
    return Option(path, kind, default_of(info), text)


def model_of(annotation: Any) -> type[ConfigModel] | None:
    bare = _bare(annotation)
    if typing.get_origin(bare) is tuple:
        bare = _bare(typing.get_args(bare)[0])
    if isinstance(bare, type) and issubclass(bare, ConfigModel):
        return bare
    return None


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and without ``| None``."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _bare(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _bare(rest[0])
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _metadata(annotation: Any) -> list[Any]:
    """Every metadata item of ``annotation``, through ``| None`` and ``Annotated`` (not into
    a list's items, which have their own)."""
    out: list[Any] = []
    if typing.get_origin(annotation) is typing.Annotated:
        out += list(annotation.__metadata__)
        out += _metadata(typing.get_args(annotation)[0])
    elif _is_union(annotation):
        for arg in typing.get_args(annotation):
            out += _metadata(arg)
    return out


def _type_of(path: str, info: FieldInfo) -> str:
    metadata = [*info.metadata, *_metadata(info.annotation)]
    bare = _bare(info.annotation)
    if typing.get_origin(bare) is tuple:
        item = typing.get_args(bare)[0]
        return f"list of {_plain_type(path, _bare(item), _metadata(item))}"
    shown = any(isinstance(m, Shown) for m in metadata)
    secret = " (secret)" if bare is SecretStr and shown else ""
    return _plain_type(path, bare, metadata) + _bounds(metadata) + secret


_PLAIN = {bool: "boolean", int: "integer", float: "number", str: "string"}
_NAMED: tuple[tuple[type, str], ...] = (
    (ConfigModel, "mapping"),
    (Selector, "[selector](#selectors)"),
    (Severity, "severity"),
    (FindingKind, "finding kind"),
    (SecretStr, "string (secret)"),
)


def _plain_type(path: str, bare: Any, metadata: Sequence[Any]) -> str:
    for m in metadata:
        if isinstance(m, Shown):
            return m.text
        if isinstance(m, Duration):
            kind = "seconds or duration" if bare is float else "duration"
            return kind + _duration_bounds(m.minimum, m.maximum)
    if any(isinstance(m, PlainValidator) for m in metadata):
        # its validator decides what the field takes: the declared type may not say it
        raise ValueError(f"{path}: a plain validator without Shown(...): say what it takes")
    if typing.get_origin(bare) is typing.Literal:
        return _either([f"`{a}`" for a in typing.get_args(bare)])
    if bare in _PLAIN:
        return _PLAIN[bare]
    for base, text in _NAMED:
        if isinstance(bare, type) and issubclass(bare, base):
            return text
    raise ValueError(f"{path}: cannot describe the type {bare!r}")


def _either(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _duration_bounds(minimum: timedelta, maximum: timedelta | None) -> str:
    low = minimum > timedelta()
    if low and maximum is not None:
        return f", {format_duration(minimum)} to {format_duration(maximum)}"
    if low:
        return f", at least {format_duration(minimum)}"
    if maximum is not None:
        return f", at most {format_duration(maximum)}"
    return ""


def _bounds(metadata: Sequence[Any]) -> str:
    low: Any = None
    high: Any = None
    above = False
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            low = m.ge
        elif isinstance(m, annotated_types.Gt):
            low, above = m.gt, True
        elif isinstance(m, annotated_types.Le):
            high = m.le
    if low is None and high is None:
        return ""
    if above:
        text = f", more than {_number(low)}"
        return text + (f", at most {_number(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f", {_number(low)} to {_number(high)}"
    if low is not None:
        return f", at least {_number(low)}"
    return f", at most {_number(high)}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def default_of(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "(its defaults)"
    value = info.default
    if value is PydanticUndefined or value is None:
        return "none"
    return f"`{_yaml_value(value)}`"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int | float):
        return _number(value).replace(",", "")
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)
