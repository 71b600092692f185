"""Ties of log entries to the simulator's logs, directly: Rekor v2 entries proven from hash
tiles (in the monitor's tree, or the log's proven consistent with it), entries the log holds
otherwise or not at all, a log of the trust root nobody configured."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from monitor.config.load import parse_settings
from monitor.config.logs import LogSettings
from monitor.daemon.runners import runner_name
from monitor.images import LogTies, Ours
from monitor.imagesig import LogEntryRef
from monitor.sim.run import V2_SHARD
from monitor.tlog.checkpoint import SignedCheckpoint
from tests.images_support import config_doc
from tests.simlog import Harness, harness, run


def with_ties(
    tmp_path: Path, body: Callable[[Harness, Callable[..., LogTies]], Awaitable[None]]
) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=300, shards=2) as h:
            settings = parse_settings(yaml.safe_dump(config_doc(h, tmp_path, [])))

            def ties(ours: Ours | None = None, *, configured: bool = True) -> LogTies:
                logs = settings.logs if configured else ()
                return LogTies(h.trust, logs, h.session, metrics=h.metrics, ours=ours)

            await body(h, ties)

    run(go)


def v2_ref(h: Harness, index: int, body: bytes | None = None) -> LogEntryRef:
    log = h.sim.state.v2_shards[V2_SHARD]
    return LogEntryRef(
        log_id=h.v2.log.log_id,
        log_index=index,
        integrated_time=None,
        kind="hashedrekord",
        api_version="0.0.2",
        body=log.entry(index).body if body is None else body,
    )


def v2_name(h: Harness) -> str:
    """As the daemon names the discovered shard."""
    config = LogSettings.model_validate({"name": "sim-v2", "api": "v2", "discover": True})
    return runner_name(config, h.v2.log)


def test_v2_entry_proven_in_the_logs_latest_tree(tmp_path: Path) -> None:
    async def body(h: Harness, ties: Callable[..., LogTies]) -> None:
        ref = v2_ref(h, 123)
        got = await ties().tie(ref)
        assert got.tie.status == "proven", got.tie.detail
        assert got.tie.log == v2_name(h)
        assert got.tie.log_body_sha256 == ref.body_sha256
        assert "proven in the log's signed tree of 300" in got.tie.detail
        assert "no verified checkpoint of the monitor's" in got.tie.detail
        assert got.proof is None  # a v2 bundle carries its own

    with_ties(tmp_path, body)


def test_v2_entry_proven_in_our_tree_or_the_logs_consistent_one(tmp_path: Path) -> None:
    async def body(h: Harness, ties: Callable[..., LogTies]) -> None:
        ours = await h.v2.checkpoint()
        asked: list[str] = []

        def latest(name: str) -> SignedCheckpoint:
            asked.append(name)
            return ours

        got = await ties(latest).tie(v2_ref(h, 10))
        assert got.tie.status == "proven", got.tie.detail
        assert got.tie.detail == "in the log at 10, proven in the monitor's verified tree of 300"
        assert asked == [v2_name(h)]
        await h.admin("append", {"v2": 40})  # the entry is past our tree: the log's, proven
        later = await ties(latest).tie(v2_ref(h, 320))
        assert later.tie.status == "proven", later.tie.detail
        assert (
            "the log's signed tree of 340, consistent with the monitor's verified tree of 300"
            in later.tie.detail
        )

    with_ties(tmp_path, body)


def test_v2_another_body_is_a_mismatch_and_none_yet_unproven(tmp_path: Path) -> None:
    async def body(h: Harness, ties: Callable[..., LogTies]) -> None:
        other = h.sim.state.v2_shards[V2_SHARD].entry(7).body
        got = await ties().tie(v2_ref(h, 8, body=other))
        assert got.tie.status == "mismatch"
        held = hashlib.sha256(h.sim.state.v2_shards[V2_SHARD].entry(8).body).hexdigest()
        assert got.tie.log_body_sha256 == held
        assert f"the log holds another body at 8: sha256:{held}" in got.tie.detail
        past = LogEntryRef(h.v2.log.log_id, 5000, None, "hashedrekord", "0.0.2", other)
        beyond = await ties().tie(past)
        assert beyond.tie.status == "unavailable"  # a bundle may be newer than the tree read
        assert beyond.tie.detail == "the log holds no entry 5000 yet: its signed tree ends at 300"

    with_ties(tmp_path, body)


def test_v2_log_that_cannot_prove_is_unavailable(tmp_path: Path) -> None:
    async def body(h: Harness, ties: Callable[..., LogTies]) -> None:
        await h.admin("faults", {"tamper": [3]})  # a body that is not the leaf
        got = await ties().tie(v2_ref(h, 3))
        assert got.tie.status == "unavailable"
        assert got.tie.detail == "the entry the log serves at 3 is not the leaf its tiles hold"
        assert got.tie.log_body_sha256 is None
        await h.admin("faults", {"tamper": [], "bad_signature": True})
        got = await ties().tie(v2_ref(h, 3))
        assert got.tie.status == "unavailable"
        assert "checkpoint" in got.tie.detail

    with_ties(tmp_path, body)


def test_a_trust_root_log_nobody_configured(tmp_path: Path) -> None:
    async def body(h: Harness, ties: Callable[..., LogTies]) -> None:
        log = h.sim.state.v1
        ref = LogEntryRef(h.v1.log.log_id, 250, None, "hashedrekord", "0.0.1", log.entry(250).body)
        got = await ties(configured=False).tie(ref)
        assert got.tie.status == "proven", got.tie.detail
        assert got.tie.log is None
        assert "a log of the trust root no configured log reads" in got.tie.detail
        assert got.proof is not None
        assert got.proof.log_index == 250 - 150  # in the second shard
        assert got.proof.tree_size == 150

    with_ties(tmp_path, body)
