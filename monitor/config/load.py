"""Load the configuration file into ``Settings``, or fail with every problem at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from monitor.config.models import Settings
from monitor.config.problems import Problem, problems_of
from monitor.config.secrets import ENVIRON_CONTEXT_KEY
from monitor.config.yamldoc import Document, parse_document, read_document

DEFAULT_CONFIG_PATH = "config/monitor.yaml"
SECTIONS = tuple(Settings.model_fields)


def load_settings(
    path: str | Path = DEFAULT_CONFIG_PATH, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, parse and validate; secrets come from ``environ`` (default: the process's).

    Raises ``ConfigFileError`` (a ``ConfigError``) listing every problem as
    ``<file>:<line>: <field.path>: <what is wrong>``.
    """
    return settings_from_document(read_document(path), environ)


def parse_settings(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Settings:
    """The same from YAML text; ``source`` names it in messages."""
    return settings_from_document(parse_document(text, source), environ)


def settings_from_document(doc: Document, environ: Mapping[str, str] | None = None) -> Settings:
    if doc.data is None:
        raise doc.error([Problem((), _shape("the file is empty"))])
    if not isinstance(doc.data, Mapping):
        raise doc.error([Problem((), _shape(f"the top level is a {_kind(doc.data)}"))])
    context = {ENVIRON_CONTEXT_KEY: environ} if environ is not None else None
    try:
        settings = Settings.model_validate(doc.data, context=context)
    except ValidationError as e:
        raise doc.error(problems_of(e)) from None
    if doc.problems:
        raise doc.error([])
    return settings


def _shape(what: str) -> str:
    return f"{what}; a configuration is a mapping of sections: {', '.join(SECTIONS)}"


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
