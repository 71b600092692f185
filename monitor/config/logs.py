"""The settings of what is watched: the logs, and the trust files that say how to verify them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from monitor.config import fields
from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import HttpUrl, Name, StartPoint, TrustFile
from monitor.config.problems import Problem
from monitor.config.witnesses import WitnessSettings

DEFAULT_BATCH = {"v1": 1024, "v2": 4096}  # entries per transaction, by log API
PRODUCTION_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"  # = monitor.trust.tuf's
MAX_REQUESTS_PER_SECOND = 100.0  # the public Rekor v1 allows about 16


class TrustSettings(ConfigModel):
    """Where the trusted root (log keys, Fulcio CAs) and signing config (API versions, v2
    shards) come from."""

    trusted_root: TrustFile = Field(
        default=fields.DEFAULT,
        description="A Sigstore TrustedRoot JSON file, or `default`: the production root "
        "shipped with the package. Checkpoints, inclusion and consistency proofs and "
        "certificate chains are verified against it, so it decides what the monitor believes.",
    )
    signing_config: TrustFile = Field(
        default=fields.DEFAULT,
        description="A Sigstore SigningConfig JSON file, or `default`. It says which API "
        "version each log speaks and lists the current Rekor v2 shards (`discover: true`).",
    )
    refresh: Literal["none", "tuf"] = Field(
        default="none",
        description="`none`: use the files as they are. `tuf`: fetch both from Sigstore's TUF "
        "repository at start and every `refresh_interval`, verified from the root the package "
        "ships, so that new Rekor v2 shards and key rotations arrive without a new release. "
        "With `tuf`, `trusted_root` and `signing_config` must be `default`.",
    )
    refresh_interval: Annotated[timedelta, Duration(timedelta(minutes=5), timedelta(days=7))] = (
        Field(default=timedelta(hours=24), description="How often to refresh with `refresh: tuf`.")
    )
    tuf_url: HttpUrl = Field(default=PRODUCTION_TUF_URL, description="The TUF repository.")
    tuf_cache: str = Field(
        default="data/tuf",
        description="Where TUF metadata and targets are cached (relative to the "
        "configuration file's directory).",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = []
        if raw.get("refresh") == "tuf":
            for key in ("trusted_root", "signing_config"):
                if raw.get(key, fields.DEFAULT) != fields.DEFAULT:
                    out.append(
                        Problem(
                            (key,),
                            "with refresh: tuf both files come from TUF: use default, "
                            "or refresh: none to use this file",
                        )
                    )
        return out


class LogSettings(ConfigModel):
    """One log to monitor: a Rekor v1 instance, one Rekor v2 shard, or (``discover``) every
    v2 shard that the signing config lists, followed as they come and go."""

    name: Name = Field(
        description="The log's name in findings, metrics, the API and `--log` options. A "
        "discovered Rekor v2 shard is named `NAME@SHARD`, e.g. "
        "`rekor-v2@log2025-1.rekor.sigstore.dev`."
    )
    api: Literal["v1", "v2"] = Field(
        description="`v1` (the Rekor v1 REST API) or `v2` (Rekor v2, C2SP tiles). The log must "
        "be one of the trusted root, and speak the API version the signing config names for "
        "it: `check-config` checks both."
    )
    url: HttpUrl | None = Field(
        default=None,
        description="The log's base URL. Required for `v1`; for `v2`, give either a `url` (one "
        "shard) or `discover: true`.",
    )
    discover: bool = Field(
        default=False,
        description="`v2` only: follow every Rekor v2 shard the signing config lists, new ones "
        "from their first entry. One log at most may discover.",
    )
    start: StartPoint = Field(
        default="resume",
        description="Where to begin when the database holds no cursor for this log: `tip` "
        "(the current end), a log index, or `resume` (the stored cursor, else the tip). Once a "
        "cursor is stored it always wins, so no entry is ever skipped; older ranges are for "
        "`tlog-monitor backfill`.",
    )
    poll_interval: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(hours=1))] = Field(
        default=timedelta(seconds=30), description="How often to ask for a new checkpoint."
    )
    requests_per_second: float = Field(
        default=8.0,
        gt=0,
        le=MAX_REQUESTS_PER_SECOND,
        description="The request budget against this log (a token bucket). The public "
        "rekor.sigstore.dev allows about 16 requests a second per client: 8 leaves room for "
        "others.",
    )
    burst: float = Field(
        default=4.0, ge=1, le=1000, description="Requests allowed in a burst above that rate."
    )
    max_concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at once.")
    timeout: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(minutes=10))] = Field(
        default=timedelta(seconds=30),
        description="Time allowed for one request, retries not included.",
    )
    # None: DEFAULT_BATCH[api]; a v2 chunk of 16 full tiles makes fewer, larger commits,
    # which share index pages: +6 to 17% catch-up speed for ~10 MB more memory
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Entries fetched, verified and stored per transaction; by default 1024 for "
        "Rekor v1 and 4096 (16 tiles) for Rekor v2. Larger batches catch up faster; smaller "
        "ones make each commit, and a crash, cheaper.",
    )
    index_all: bool = Field(
        default=False,
        description="Also store a compact row (identity, issuer, key fingerprint, digest, "
        "index, time) for every entry, not only for those a rule matched, so that responders "
        "can ask about identities nobody was watching. Rekor v2 has no search API: this is its "
        "index.",
    )
    retention: Annotated[timedelta, Duration(timedelta(hours=1))] | None = Field(
        default=None,
        description="How long `index_all` rows are kept (none: forever). Only with "
        "`index_all: true`.",
    )
    # what the log may make the monitor hold (monitor.logclient.limits)
    max_entry_bytes: int = Field(
        default=1 << 20,
        ge=64 << 10,
        le=16 << 20,
        description="The largest entry the log may serve (Rekor v1: its body and the "
        "attestation stored with it, together); an answer holding a larger one is refused, and "
        "each answer is refused as it is read once it exceeds what the entries asked for may "
        "take. Real entries take a few KB.",
    )
    memory_budget_bytes: int = Field(
        default=64 << 20,
        ge=1 << 20,
        le=1 << 30,
        description="The most the log's answers may hold in memory at once (read, decoded, or "
        "waiting to be stored): fetching ahead waits rather than exceed it, so a hostile log "
        "can slow the monitor down, not exhaust its memory. Size the process from it: see the "
        "deployment guide.",
    )
    missing_after: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(days=7))] = Field(
        default=timedelta(minutes=10),
        description="How long entries (or tiles) of a tree the log signed may stay "
        "unavailable before that is a `missing_entries` integrity failure, with the signed "
        "tree head as evidence, rather than an outage.",
    )

    witnesses: WitnessSettings | None = Field(
        default=None,
        description="Witnesses whose cosignatures the log's checkpoints must (or should) "
        "carry, and a distributor to compare them with (see below).",
        json_schema_extra={
            "note": "Witness cosignatures on the log's checkpoints (Rekor v2), and a "
            "distributor to compare its checkpoints with."
        },
    )

    def chunk_size(self) -> int:
        """Entries per transaction: ``batch_size``, else the default for the API."""
        return self.batch_size if self.batch_size is not None else DEFAULT_BATCH[self.api]

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        api, url, discover = raw.get("api"), raw.get("url"), raw.get("discover", False)
        out = []
        if isinstance(discover, bool):
            if api == "v1" and discover:
                out.append(Problem(("discover",), "is for api: v2 (a Rekor v1 log has one URL)"))
            elif discover and url is not None:
                out.append(
                    Problem(("discover",), "give url (one shard) or discover: true, not both")
                )
            elif api == "v1" and url is None:
                out.append(Problem(("url",), "required for api: v1"))
            elif api == "v2" and url is None and not discover:
                out.append(
                    Problem(
                        ("url",),
                        "give url (one shard) or discover: true (every v2 shard in the "
                        "signing config)",
                    )
                )
        witnesses = raw.get("witnesses")
        if api == "v1" and isinstance(witnesses, Mapping):
            out += [
                Problem(
                    ("witnesses", key),
                    "Rekor v1 checkpoints carry no witness cosignatures: only distributor "
                    "applies to a v1 log",
                )
                for key in ("policy", "keys", "quorum", "mode")
                if witnesses.get(key) not in (None, [], "off", False)  # YAML reads off as false
            ]
        if raw.get("retention") is not None and raw.get("index_all") is not True:
            out.append(Problem(("retention",), "applies to index_all rows: set index_all: true"))
        return out
