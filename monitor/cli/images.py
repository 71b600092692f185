"""``tlog-monitor images``: container images on their registries, one sub-command per
module (``images check`` in ``images_check.py``)."""

from __future__ import annotations

import argparse

from monitor.cli import images_check, images_list


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "images",
        help="container images: check a reference's signatures; list those watched",
        description="Container images on their registries, their signatures and "
        "attestations, and the log entries those name.",
    )
    group = p.add_subparsers(dest="images_command", metavar="COMMAND", required=True)
    images_check.register(group)
    images_list.register_list(group)
