"""The options commands share, spelt and explained once, so that the command line has one
grammar: ``--config FILE`` wherever a configuration is read, ``--db URL`` wherever a database
is, ``--json`` for one JSON document and ``--jsonl`` for JSON Lines, ``--limit`` and
``--cursor`` for pages of the size the API uses."""

from __future__ import annotations

import argparse

from monitor.config.load import DEFAULT_CONFIG_PATH
from monitor.storage.paging import DEFAULT_PAGE_SIZE, MAX_PAGE
from monitor.storage.urls import URL_ENV, default_url

Parser = argparse.ArgumentParser


def add_config(p: Parser, what: str = "the configuration file") -> None:
    """``--config FILE``, defaulting to the ready configuration."""
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"{what} (default {DEFAULT_CONFIG_PATH})",
    )


def add_database(p: Parser) -> None:
    """``--db URL`` or ``--config FILE`` (its ``database`` section only), one of them."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--db",
        dest="db_url",
        metavar="URL",
        help=(
            "the database: sqlite:///FILE (or a file path) or postgresql://USER@HOST/DB "
            f"(default: ${URL_ENV}, else {default_url()} in the working directory)"
        ),
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        help=(
            "read the database from this configuration: its database section only (and "
            "the password it names); relative paths are relative to the file"
        ),
    )


def add_json(p: Parser, *, lines: str | None = None) -> None:
    """``--json``: the results as one JSON document. With ``lines`` (what each line is),
    also ``--jsonl``: JSON Lines, one object a line as each result is ready."""
    if lines is None:
        p.add_argument("--json", action="store_true", help="print one JSON document")
        return
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print one JSON document")
    group.add_argument(
        "--jsonl", action="store_true", help=f"print JSON Lines: one object per {lines}"
    )


def page_size(text: str) -> int:
    """An argparse type: a page size the store accepts (more is refused, not clipped)."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{text!r}: a page size from 1 to {MAX_PAGE}")
    return int(text)


def add_limit(p: Parser, what: str = "items") -> None:
    p.add_argument(
        "--limit",
        type=page_size,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"{what} per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE})",
    )


def add_page_options(p: Parser) -> None:
    """What every command reading pages from the database takes."""
    add_limit(p)
    p.add_argument(
        "--cursor", metavar="CURSOR", help="continue after the page that printed this cursor"
    )
    add_json(p)
    add_database(p)
