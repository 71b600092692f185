"""Load the configuration file into ``Settings``, or fail with every problem at once; or only
its ``database`` section, for the commands that just read the database."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.fields import DEFAULT
from monitor.config.models import DatabaseSettings, Settings
from monitor.config.paths import (
    BASE_CONTEXT_KEY,
    anchored,
    anchored_database_url,
    directory_of,
)
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
    return settings_from_document(read_document(path), environ, base=directory_of(path))


def parse_settings(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Settings:
    """The same from YAML text; ``source`` names it in messages."""
    return settings_from_document(parse_document(text, source), environ)


def settings_from_document(
    doc: Document, environ: Mapping[str, str] | None = None, *, base: Path | None = None
) -> Settings:
    """``base``: the directory relative paths are read from (the file's; None: the working
    directory's)."""
    _check_shape(doc)
    try:
        settings = Settings.model_validate(doc.data, context=_context(environ, base))
    except ValidationError as e:
        raise doc.error(problems_of(e)) from None
    if doc.problems:
        raise doc.error([])
    return anchor_settings(settings, base)


def load_database_settings(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> DatabaseSettings:
    """Only the ``database`` section of the file (and its password, from ``environ``): what
    the commands that read the database need. The other sections are not read, so that a
    responder needs no sink secret, token hash or trust file to query findings or history."""
    doc = read_document(path)
    _check_shape(doc)
    base = directory_of(path)
    section = doc.data.get("database")
    try:
        db = DatabaseSettings.model_validate(section, context=_context(environ, base))
    except ValidationError as e:
        located = [Problem(("database", *p.loc), p.message) for p in problems_of(e)]
        raise doc.error(located, section="database") from None
    if any(p.loc[:1] == ("database",) for p in doc.problems):
        raise doc.error([], section="database")
    return _anchor_database(db, base)


def declared_names(path: str | Path) -> dict[str, tuple[str, ...]]:
    """The names a configuration gives its rules (``watch``), sinks (``alerts.sinks``) and
    logs (``logs``; a log that discovers shards has none of its own: its shards are
    ``NAME@SHARD``), read without validating anything: the commands that only read the
    database use them to tell a rule with no finding yet from a typo."""
    doc = read_document(path)
    _check_shape(doc)
    alerts = doc.data.get("alerts")
    sections = {
        "watch": doc.data.get("watch"),
        "alerts.sinks": alerts.get("sinks") if isinstance(alerts, Mapping) else None,
        "logs": doc.data.get("logs"),
    }
    out: dict[str, tuple[str, ...]] = {}
    for key, items in sections.items():
        names = []
        for item in items if isinstance(items, list) else ():
            shards = key == "logs" and isinstance(item, Mapping) and item.get("discover") is True
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and not shards:
                names.append(item["name"])
        out[key] = tuple(names)
    return out


def anchor_settings(settings: Settings, base: Path | None) -> Settings:
    """``settings`` with every relative path (trust files, TUF cache, SQLite file; defaults
    included) read relative to ``base``."""
    if base is None:
        return settings
    trust = settings.trust
    paths = {"tuf_cache": anchored(trust.tuf_cache, base)}
    for name in ("trusted_root", "signing_config"):
        value = getattr(trust, name)
        if value != DEFAULT:
            paths[name] = anchored(value, base)
    return settings.model_copy(
        update={
            "trust": trust.model_copy(update=paths),
            "database": _anchor_database(settings.database, base),
        }
    )


def _anchor_database(db: DatabaseSettings, base: Path | None) -> DatabaseSettings:
    return db.model_copy(update={"url": anchored_database_url(db.url, base)})


def _context(environ: Mapping[str, str] | None, base: Path | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if environ is not None:
        context[ENVIRON_CONTEXT_KEY] = environ
    if base is not None:
        context[BASE_CONTEXT_KEY] = base
    return context


def _check_shape(doc: Document) -> None:
    if doc.data is None:
        raise doc.error([Problem((), _shape("the file is empty"))])
    if not isinstance(doc.data, Mapping):
        raise doc.error([Problem((), _shape(f"the top level is a {_kind(doc.data)}"))])


def _shape(what: str) -> str:
    return f"{what}; a configuration is a mapping of sections: {', '.join(SECTIONS)}"


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
