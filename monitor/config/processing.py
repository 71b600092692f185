"""The ``processing`` section: how the monitor spends the machine's cores."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainValidator

from monitor.config.base import ConfigModel
from monitor.config.fields import Shown

__all__ = ["ProcessingSettings"]

MAX_WORKERS = 64


def _workers(value: object) -> Literal["auto"] | int:
    # one message for both forms (a union would report each branch's failure)
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_WORKERS:
        return value
    raise ValueError(f"must be `auto` or a whole number from 0 to {MAX_WORKERS} (got {value!r})")


class ProcessingSettings(ConfigModel):
    """How entries are processed: where they are parsed and matched."""

    parse_workers: Annotated[
        Literal["auto"] | int, PlainValidator(_workers), Shown("`auto` or 0 to 64")
    ] = Field(
        default="auto",
        description="Processes that parse and match entries beside the one that fetches, "
        "proves and stores them, so that a long catch-up or backfill uses every core. "
        "`auto`: one per core beyond the first that the process may use (its container's CPU "
        "quota counts), at most 4, none on one core; `0`: everything in the monitor's own "
        "process. Each worker takes about 55 MB. A tailer's few new entries "
        "are always parsed in place.",
    )
