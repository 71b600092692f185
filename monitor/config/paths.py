"""Relative paths in a configuration file are relative to the file's directory.

So one file names the same trust files, TUF cache and SQLite database whoever reads it and
from wherever: ``tlog-monitor findings --config /etc/tlog-monitor/monitor.yaml`` run from a
home directory reads the daemon's database, not an empty one beside the caller. Defaults
count as written in the file (``data/monitor.db`` is ``data/`` beside it). Text parsed with
no file behind it (``parse_settings``) keeps its paths relative to the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationInfo
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BASE_CONTEXT_KEY = "base"


def base_of(info: ValidationInfo) -> Path | None:
    """The directory relative paths are read from, if the validation context gives one."""
    context = info.context
    if isinstance(context, Mapping):
        base = context.get(BASE_CONTEXT_KEY)
        if isinstance(base, Path):
            return base
    return None


def directory_of(config_path: str | Path) -> Path:
    """The absolute directory of a configuration file (symbolic links are not followed:
    the directory the user named is the one meant)."""
    return Path(os.path.abspath(config_path)).parent


def anchored(value: str, base: Path | None) -> str:
    """``value`` read relative to ``base`` (unchanged when absolute or without a base)."""
    if base is None or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))


def anchored_database_url(url: str, base: Path | None) -> str:
    """A SQLite URL with its file read relative to ``base``; any other URL unchanged."""
    if base is None:
        return url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url  # validation says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    return parsed.set(database=anchored(parsed.database, base)).render_as_string(
        hide_password=False
    )
