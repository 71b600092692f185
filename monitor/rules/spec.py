"""Watch rules as data: what "ours" is (``match``), what a legitimate signature of ours looks
like (``expect``), and how bad a surprise is (``severity``).

A selector maps fields to patterns: fields combine with AND, the patterns of one field with
OR. A pattern is an exact string, a glob (``*`` matches anything, ``/`` included), or an
anchored regular expression written ``{regex: ...}`` (RE2 syntax: linear time, no
backtracking, so no rule can hang the monitor).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import re2

from monitor.core.errors import ConfigError
from monitor.core.findings import Severity
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS, FULCIO_EXTENSIONS

# selector field names as written in YAML (extensions is a mapping of its own)
SIMPLE_FIELDS = (
    "san",
    "issuer",
    "key_fingerprint",
    "cert_fingerprint",
    "digest",
    "subject",
    "subject_digest",
    "kind",
    "log",
)
EXTENSIONS = "extensions"
EXT_PREFIX = "ext:"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
MAX_PATTERN_LENGTH = 4096


def regex_options() -> re2.Options:
    """The RE2 options every rule pattern is compiled with."""
    options = re2.Options()
    options.dot_nl = True  # a glob's `*` matches anything, newline included
    options.max_mem = 64 << 20  # room for the DFA of a thousand patterns in one set
    options.log_errors = False  # a bad pattern becomes a ConfigError, not stderr noise
    return options


def _re2_message(e: Exception) -> str:
    msg = e.args[0] if e.args else str(e)
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


class PatternKind(StrEnum):
    EXACT = "exact"
    GLOB = "glob"
    REGEX = "regex"


@dataclass(frozen=True)
class Pattern:
    kind: PatternKind
    text: str

    @classmethod
    def parse(cls, value: Any) -> Pattern:
        """``"text"`` (exact, or a glob when it contains ``*``) or ``{regex: "..."}``."""
        if isinstance(value, Mapping):
            if set(value) != {"regex"} or not isinstance(value["regex"], str):
                raise ConfigError("a pattern object must be exactly {regex: <string>}")
            pattern = cls(PatternKind.REGEX, value["regex"])
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            pattern = cls(PatternKind.GLOB if "*" in text else PatternKind.EXACT, text)
        else:
            raise ConfigError("a pattern is a string or {regex: <string>}")
        if not pattern.text:
            raise ConfigError("a pattern must not be empty")
        if len(pattern.text) > MAX_PATTERN_LENGTH:
            raise ConfigError(f"a pattern is longer than {MAX_PATTERN_LENGTH} characters")
        if pattern.kind is not PatternKind.EXACT:
            try:
                re2.compile(pattern.as_regex(), regex_options())
            except re2.error as e:
                raise ConfigError(
                    f"invalid regular expression {pattern.text!r}: {_re2_message(e)}"
                ) from None
            except UnicodeEncodeError:
                raise ConfigError(f"pattern {pattern.text!r} is not valid Unicode") from None
        return pattern

    def as_regex(self) -> str:
        """An RE2 pattern matching exactly what this pattern matches (used fully anchored)."""
        if self.kind is PatternKind.REGEX:
            return f"(?:{self.text})"
        if self.kind is PatternKind.GLOB:
            return ".*".join(re.escape(part) for part in self.text.split("*"))
        return re.escape(self.text)

    def __str__(self) -> str:
        return f"regex:{self.text}" if self.kind is PatternKind.REGEX else self.text


@dataclass(frozen=True)
class Selector:
    """``fields`` maps a field (``san``, ``ext:source-repository-uri``, ...) to its patterns."""

    fields: tuple[tuple[str, tuple[Pattern, ...]], ...]

    @classmethod
    def parse(cls, doc: Any) -> Selector:
        """From the YAML mapping; raises ``ConfigError`` naming the field at fault."""
        if not isinstance(doc, Mapping) or not doc:
            raise ConfigError("a selector is a non-empty mapping of fields")
        out: list[tuple[str, tuple[Pattern, ...]]] = []
        for key, value in doc.items():
            if key == EXTENSIONS:
                if not isinstance(value, Mapping) or not value:
                    raise ConfigError("extensions: a mapping of extension name or OID to values")
                for ext, patterns in value.items():
                    field = extension_field(str(ext))
                    out.append((field, _patterns(patterns, f"extensions.{ext}")))
            elif key in SIMPLE_FIELDS:
                out.append((key, _patterns(value, key, normalise=_NORMALISE.get(key))))
            else:
                known = ", ".join((*SIMPLE_FIELDS, EXTENSIONS))
                raise ConfigError(f"{key}: unknown field; known fields: {known}")
        return cls(tuple(out))

    def field_names(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.fields)


def extension_field(name: str) -> str:
    """``ext:<Fulcio name>`` for Fulcio extensions (by name or OID), ``ext:<OID>`` otherwise."""
    if name in FULCIO_EXTENSION_OIDS:
        return EXT_PREFIX + name
    if _OID.fullmatch(name):
        return EXT_PREFIX + FULCIO_EXTENSIONS.get(name, name)
    known = ", ".join(sorted(FULCIO_EXTENSION_OIDS))
    raise ConfigError(f"extensions.{name}: not a Fulcio extension name ({known}) nor a dotted OID")


def _lower_hex(text: str) -> str:
    """Digests and hex fingerprints compare case-insensitively: ``sha256:ABC`` = ``sha256:abc``."""
    alg, sep, value = text.rpartition(":")
    if all(c in "0123456789abcdefABCDEF" for c in value):
        return f"{alg.lower()}{sep}{value.lower()}"
    return text


_NORMALISE = {
    "digest": _lower_hex,
    "subject_digest": _lower_hex,
    "key_fingerprint": _lower_hex,
    "cert_fingerprint": _lower_hex,
}


def _patterns(value: Any, where: str, normalise: Any = None) -> tuple[Pattern, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{where}: an empty list matches nothing")
    out = []
    for i, item in enumerate(items):
        try:
            p = Pattern.parse(item)
        except ConfigError as e:
            at = f"{where}[{i}]" if isinstance(value, list) else where
            raise ConfigError(f"{at}: {e}") from None
        if normalise is not None and p.kind is PatternKind.EXACT:
            p = Pattern(p.kind, normalise(p.text))
        out.append(p)
    return tuple(out)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    match: Selector
    expect: Selector | None
    severity: Severity
