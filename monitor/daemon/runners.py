"""The runners of a monitor: one per tree set to tail (a Rekor v1 log, or each Rekor v2
shard), each with the ``LogSource`` that reads it over its API's client, and the progress a
long pass shows."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from monitor.alerts.routing import Routing
from monitor.config.models import LogSettings
from monitor.core.metrics import ClientMetrics
from monitor.core.status import LogStatus
from monitor.daemon.context import Start
from monitor.daemon.progress import Progress
from monitor.daemon.source import LogSource
from monitor.daemon.tailer import Tailer
from monitor.daemon.v1source import RekorV1Source
from monitor.daemon.v2source import RekorV2Source
from monitor.daemon.vantage import Peer, VantageView
from monitor.daemon.witnessing import WitnessGate
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.v1 import RekorV1Client
from monitor.logclient.v2 import RekorV2Client
from monitor.trust import TransparencyLog

__all__ = ["PassProgress", "Runner", "build_runner", "link_to_entry", "runner_name"]


def runner_name(config: LogSettings, tlog: TransparencyLog) -> str:
    """A log's name in the store: the configured name, or for a discovered v2 shard the
    configured name and the shard, e.g. ``rekor-v2@log2025-1.rekor.sigstore.dev``."""
    if not config.discover:
        return config.name
    return f"{config.name}@{re.sub(r'[^A-Za-z0-9.-]+', '-', tlog.key_name)}"


@dataclass
class Runner:
    """One tree set to tail: its configuration, trust-root entry, what reads it (whatever
    its API) and its status."""

    name: str
    config: LogSettings
    tlog: TransparencyLog
    source: LogSource
    start: Start
    status: LogStatus
    witnesses: WitnessGate | None = None  # the log's witness policy (Rekor v2)
    vantage: VantageView | None = None  # other vantage points to compare its checkpoints with
    tailer: Tailer | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def build_runner(
    cfg: LogSettings,
    tlog: TransparencyLog,
    start: Start,
    *,
    session: aiohttp.ClientSession,
    metrics: ClientMetrics,
    policy: HttpPolicy,
    routing: Routing | None = None,
) -> Runner:
    """The runner of ``tlog``: its HTTP client under ``policy`` and the source of its API;
    its witness gate and its vantage points, when configured (a split view is routed by
    ``routing``)."""
    name = runner_name(cfg, tlog)
    http = LogHttp(tlog.base_url, session, log=name, metrics=metrics, policy=policy)
    source: LogSource = (
        RekorV1Source(RekorV1Client(http, tlog))
        if cfg.api == "v1"
        else RekorV2Source(RekorV2Client(http, tlog))
    )
    runner = Runner(name, cfg, tlog, source, start, LogStatus(name), witness_gate(cfg, name))
    peers = () if cfg.witnesses is None else cfg.witnesses.peers()
    if peers:
        # a vantage point answers in seconds or proves nothing this pass: it never holds the
        # log up for long, and its requests are counted under its own name, not the log's
        brief = dataclasses.replace(policy, timeout_seconds=10.0, max_attempts=2)
        runner.vantage = VantageView(
            name,
            [
                Peer(
                    p.type,
                    LogHttp(p.url, session, log=peer_label(p.url), metrics=metrics, policy=brief),
                    p.log,
                    None if p.token is None else p.token.get_secret_value(),
                )
                for p in peers
            ],
            routing or Routing(),
        )
    return runner


def peer_label(url: str) -> str:
    """A vantage point's name in metrics and logs: ``peer:`` and its host."""
    return f"peer:{urlsplit(url).hostname or url[:64]}"


def witness_gate(cfg: LogSettings, name: str) -> WitnessGate | None:
    """The gate of a Rekor v2 log's checkpoints, when witnesses are configured for it."""
    w = cfg.witnesses
    policy = None if w is None or cfg.api != "v2" else w.load_policy()
    if w is None or policy is None:
        return None
    return WitnessGate(name, policy, w.effective_mode, w.unwitnessed_after.total_seconds())


def link_to_entry(runner: Runner | None, index: int) -> str | None:
    """A link to an entry for people: the public search UI for the public Rekor v1 log."""
    if runner is None or runner.config.api != "v1":
        return None
    if runner.tlog.base_url.rstrip("/") != "https://rekor.sigstore.dev":
        return None
    return f"https://search.sigstore.dev/?logIndex={index}"


class PassProgress:
    """Progress of one pass, shown only once the pass turns out to be long."""

    def __init__(self, label: str, show_over: int) -> None:
        self.label = label
        self.show_over = show_over
        self.progress: Progress | None = None

    def planned(self, entries: int) -> None:
        if self.progress is None and entries >= self.show_over and entries > 0:
            self.progress = Progress(self.label, entries)

    def advance(self, entries: int) -> None:
        if self.progress is not None:
            self.progress.advance(entries)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
