"""Watched images in the daemon, end to end: a real registry on loopback, the simulator's logs
and CA. The monitor tails the log, passes over the repository, records what it found, raises
each image finding once (the grace period applied), ties registry signatures to its stored
entries (history by image), and calls an entry of a watched identity that no registry
explains an orphan, only once its grace is over and a complete pass began after it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.cli.main import main
from monitor.core.findings import FindingKind, Severity
from monitor.daemon.service import Monitor
from monitor.storage import FindingQuery, HistoryQuery
from tests.images_support import (
    EXPECT,
    OURS,
    THEIRS,
    World,
    config_doc,
    push_sig,
    renumbered,
    world,
)
from tests.registry_support import Layer, RunningRegistry, plain_registry
from tests.simlog import run

registry = pytest.fixture(scope="module")(plain_registry)


def monitor_config(w: World, repository: str, *, grace: str = "0s") -> Path:
    doc: dict[str, Any] = config_doc(
        w.h,
        w.tmp,
        [
            {
                "repository": repository,
                "expect": EXPECT,
                "grace": grace,
                "insecure_http": True,
                "poll_interval": "10s",
            }
        ],
    )
    doc["logs"] = [{**doc["logs"][0], "start": 0}]  # the Rekor v1 log, from its first entry
    doc["database"] = {"url": f"sqlite+aiosqlite:///{w.tmp / 'images.db'}"}
    doc["watch"] = [
        {
            "name": "ours",
            "match": {"san": EXPECT["san"]},
            "severity": "high",
            "orphans": {"grace": "1h"},
        },
    ]
    path = w.tmp / "daemon.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def kinds(m: Monitor) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for sf in (await m.store.findings(FindingQuery(limit=1000))).items:
        out.setdefault(str(sf.finding.kind), []).append(sf.finding)
    return out


def test_a_pass_records_the_repository_and_raises_each_finding_once(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body() -> None:
        async with world(tmp_path, registry) as w:
            repo, pusher = w.repo("acme/app")
            signed = await pusher.image("v1")
            ours = w.signer.signature(signed.digest, OURS, str(repo))
            await push_sig(pusher, signed, ours)
            await pusher.image("v2")  # never signed
            theirs_image = await pusher.image("v3")
            theirs = w.signer.signature(theirs_image.digest, THEIRS, str(repo))
            await push_sig(pusher, theirs_image, theirs)
            lying = await pusher.image("v4")
            lie = w.signer.signature(lying.digest, OURS, str(repo))
            a = renumbered(lie, 3, signed_by=w.signer)  # the log promised what it holds otherwise
            await pusher.legacy(
                lying.digest, ".sig", [Layer(a.media_type, a.payload, a.annotations)]
            )
            stray = w.signer.signature(signed.digest[:-4] + "beef", OURS, str(repo))  # never pushed
            cfg = monitor_config(w, str(repo))
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                await m.once()  # the log's entries, ours among them, are stored
                assert m.images is not None
                (image,) = m.settings.images
                scan = await m.images.scan(image)
                assert scan is not None
                assert scan.complete
                text = generate_latest(m.registry).decode()
                label = f'repository="{repo}"'
                assert f'tlog_monitor_image_digests{{{label},status="signed"}} 1.0' in text
                assert f'tlog_monitor_image_digests{{{label},status="unsigned"}} 2.0' in text
                assert f'tlog_monitor_image_digests{{{label},status="unexpected"}} 1.0' in text
                assert f"tlog_monitor_image_pass_age_seconds{{{label}}}" in text
                found = await kinds(m)
                # v2 has no signature; v3 only another signer's, v4 only one the log
                # contradicts: each counts as unsigned too, as the issue settles
                unsigned = {f.image.tag for f in found["unsigned_image"] if f.image is not None}
                assert unsigned == {"v2", "v3", "v4"}
                (unexpected,) = found["unexpected_signer"]
                assert unexpected.image is not None
                assert unexpected.image.digest == theirs_image.digest
                assert unexpected.matched == (("san", THEIRS.email),)
                (mismatch,) = found["tlog_mismatch"]
                assert (mismatch.severity, mismatch.log, mismatch.index) == (
                    Severity.CRITICAL,
                    "sim-v1",
                    3,
                )
                # a second pass finds the same: nothing new
                await m.images.scan(image)
                assert {k: len(v) for k, v in (await kinds(m)).items()} == {
                    k: len(v) for k, v in found.items()
                }
                # the registry signature is tied to the stored entry: history by image
                page = await m.store.history(HistoryQuery(image=f"{repo}:v1"))
                assert [(i.log, i.index) for i in page.items] == [("sim-v1", ours.log_index)]
                # orphans: none before the grace is over...
                assert await m.images.orphans() == []
                # ...then the entries no registry explains: the stray one, and v4's real
                # entry (its .sig names another index), not v1's
                m.images.clock = lambda: time.time() + 2 * 3600
                orphans = await m.images.orphans()
                assert sorted((f.log, f.index) for f in orphans) == [
                    ("sim-v1", lie.log_index),
                    ("sim-v1", stray.log_index),
                ]
                assert orphans[0].kind is FindingKind.ORPHAN_SIGNATURE
                assert orphans[0].rule == "ours"
                assert await m.images.orphans() == []  # raised once
            digests.append(signed.digest)

    digests: list[str] = []
    run(body)
    # what the pass recorded, as a responder lists it
    cfg = tmp_path / "daemon.yaml"
    assert main(["images", "list", "--config", str(cfg), "--json"]) == 0
    assert digests[0] in capsys.readouterr().out


def test_an_unsigned_digest_waits_for_its_grace(tmp_path: Path, registry: RunningRegistry) -> None:
    async def body() -> None:
        async with world(tmp_path, registry) as w:
            repo, pusher = w.repo("acme/new")
            await pusher.image("latest")
            cfg = monitor_config(w, str(repo), grace="1h")
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                assert m.images is not None
                (image,) = m.settings.images
                await m.images.scan(image)
                assert "unsigned_image" not in await kinds(m)  # first seen just now
                m.images.clock = lambda: time.time() + 3601
                await m.images.scan(image)
                (late,) = (await kinds(m))["unsigned_image"]
                assert late.image is not None
                assert late.image.tag == "latest"

    run(body)


def test_the_running_daemon_passes_over_its_repositories(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    async def body() -> None:
        async with world(tmp_path, registry) as w:
            repo, pusher = w.repo("acme/running")
            await pusher.image("v1")
            cfg = monitor_config(w, str(repo))
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                try:
                    for _ in range(200):  # the first pass runs at start
                        if (await m.store.image_digests(str(repo))).items:
                            break
                        await asyncio.sleep(0.05)
                    (digest,) = (await m.store.image_digests(str(repo))).items
                    assert (digest.tag, digest.status) == ("v1", "unsigned")
                finally:
                    stop.set()
                    await task

    run(body)
