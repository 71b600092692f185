"""``tlog-monitor images list``: the images the monitor found on the registries it watches,
from its database: each repository's tags and the digests they point at (and the platforms
of an index), their status, when each was first seen and last checked."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.cli.database import existing_database_url, with_store
from monitor.cli.options import add_page_options
from monitor.cli.table import print_table

if TYPE_CHECKING:
    from monitor.storage import Page, StoredImageDigest
    from monitor.storage.ports import ImageStore


def register_list(images: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``list`` under the ``images`` group (``images`` holds the subcommands)."""
    p = images.add_parser(
        "list",
        help="the watched repositories' tags and digests, their status, first seen, last checked",
        description=(
            "List what the registry passes found, from the monitor's database: each watched "
            "repository's tags and the digest each points at (the platforms of an index, "
            "which no tag names, first, with their platform), the status of the last check "
            "(signed, unsigned, unexpected, "
            "invalid, unknown), when the digest was first seen (its grace period starts "
            "there) and last checked. In (repository, tag, digest) order, one page at a time."
        ),
    )
    p.add_argument(
        "--repository",
        metavar="REPO",
        help="one repository (as configured, e.g. ghcr.io/acme/app; alpine is "
        "docker.io/library/alpine)",
    )
    add_page_options(p)
    p.set_defaults(handler=run_list)


def _when(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _repository(text: str | None) -> str | None:
    if text is None:
        return None
    from monitor.core.imageref import parse_repository

    return str(parse_repository(text))  # MalformedInputError: a one-line error, exit 2


def run_list(args: argparse.Namespace) -> int:
    repository = _repository(args.repository)

    async def read(store: ImageStore) -> Page[StoredImageDigest]:
        return await store.image_digests(repository, args.limit, args.cursor)

    page = with_store(existing_database_url(args), read)
    if args.json:
        doc = {"items": [d.to_json() for d in page.items], "next_cursor": page.next_cursor}
        print(json.dumps(doc, indent=2))
        return 0
    rows = [
        (
            d.repository,
            d.tag or (f"({d.platform})" if d.platform else "-"),
            d.digest,
            d.status,
            _when(d.first_seen),
            _when(d.last_checked),
        )
        for d in page.items
    ]
    head = ("REPOSITORY", "TAG", "DIGEST", "STATUS", "FIRST SEEN (UTC)", "LAST CHECKED (UTC)")
    print_table(head, rows)  # every cell escaped: tags and platforms come from a registry
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0
