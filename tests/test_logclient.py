"""The Rekor v1 and v2 clients against the simulator over real loopback HTTP, honest and
lying, and the simulator's wire formats against the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MissingEntriesError,
    ProofError,
    TransientLogError,
)
from monitor.core.metrics import ClientMetrics
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.tlog.merkle import CompactRange, leaf_hash, verify_consistency
from monitor.trust import TrustRoot
from tests.conftest import FIXTURES
from tests.simlog import FAST, Harness, harness, run


def _sample(metrics: ClientMetrics, name: str, **labels: str) -> float:
    total = 0.0
    for metric in metrics.registry.collect():
        for s in metric.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


LOGINFO = "loginfo.prod.RECONSTRUCTED.json"


# --- Rekor v1 ------------------------------------------------------------------------------


def test_v1_log_info_shards_and_index_mapping(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=3) as h:
            info = await h.v1.log_info()
            shards = info.shards()
            assert [s.size for s in shards] == [200, 200, 200]
            assert [s.start for s in shards] == [0, 200, 400]
            assert [s.active for s in shards] == [False, False, True]
            shard, local = info.to_local(450)
            assert (shard.tree_id, local) == (info.active.tree_id, 50)
            assert info.to_local(199)[1] == 199
            # the log signs under its host name (without the port, as Rekor's configured
            # hostname), not the URL's netloc; the origin embeds the tree ID
            host = h.v1.log.key_name.rsplit(":", 1)[0]
            assert info.active.checkpoint.signers == (host,)
            assert info.active.checkpoint.origin == f"{host} - {shard.tree_id}"

    run(body)


async def _verify_v1_range(h: Harness, start: int, end: int) -> None:
    """Fetch [start, end) and prove every entry is in the signed active tree."""
    info = await h.v1.log_info()
    entries = await h.v1.entries(range(start, end))
    assert sorted(entries) == list(range(start, end))
    shard = info.shards()[-1]
    rng = CompactRange()
    for g in range(shard.start, end):
        got = entries.get(g) or (await h.v1.entries([g]))[g]
        rng.append(leaf_hash(got.body))
    assert rng.root() == info.active.root_hash


def test_v1_entries_prove_into_the_signed_tree(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await _verify_v1_range(h, 300, 600)
            entry = (await h.v1.entries([305]))[305]
            assert entry.entry_id.endswith(leaf_hash(entry.body).hex())
            assert entry.log_id == h.v1.log.log_id

    run(body)


def test_v1_consistency_proofs_verify(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            before = (await h.v1.log_info()).active
            await h.admin("append", {"v1": 77})
            after = (await h.v1.log_info()).active
            proof = await h.v1.consistency_proof(before.size, after.size, after.tree_id)
            verify_consistency(before.size, after.size, proof, before.root_hash, after.root_hash)
            seeded = CompactRange.from_consistency_proof(
                before.size, after.size, proof, before.root_hash, after.root_hash
            )
            new = await h.v1.entries(range(300 + before.size, 300 + after.size))
            seeded.extend(leaf_hash(new[i].body) for i in sorted(new))
            assert seeded.root() == after.root_hash

    run(body)


def test_v1_omitted_entries_are_asked_again(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await h.admin("faults", {"omit_rate": 0.5})
            got = await h.v1.entries(range(300, 400))
            assert sorted(got) == list(range(300, 400))

    run(body)


def test_v1_entries_never_served_are_reported(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await h.admin("faults", {"omit_always": [310, 311]})
            with pytest.raises(MissingEntriesError, match="did not serve 2 entries: 310, 311"):
                await h.v1.entries(range(300, 320))

    run(body)


QUICK_TIMEOUT = HttpPolicy(**{**FAST.__dict__, "timeout_seconds": 0.3, "max_attempts": 10})


def test_v1_survives_429_5xx_timeouts_and_truncation(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, policy=QUICK_TIMEOUT) as h:
            await h.admin(
                "faults",
                {
                    "rate_429": 0.1,
                    "rate_5xx": 0.1,
                    "rate_truncate": 0.1,
                    "rate_timeout": 0.05,
                    "retry_after_seconds": 0,
                },
            )
            await _verify_v1_range(h, 300, 600)
            m = h.metrics
            assert _sample(m, "tlog_monitor_fetch_requests_total", status="429") > 0
            assert _sample(m, "tlog_monitor_fetch_requests_total", status="503") > 0
            assert _sample(m, "tlog_monitor_fetch_retries_total", reason="truncated") > 0
            assert _sample(m, "tlog_monitor_fetch_retries_total", reason="timeout") > 0
            assert _sample(m, "tlog_monitor_fetch_failures_total") == 0

    run(body)


def test_v1_retry_after_is_honoured(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await h.admin("faults", {"rate_429": 1.0, "retry_after_seconds": 1})
            policy = FAST
            http = LogHttp(
                h.v1.http.base_url,
                h.session,
                log="v1",
                metrics=h.metrics,
                policy=HttpPolicy(**{**policy.__dict__, "max_attempts": 2}),
            )
            import time

            t0 = time.monotonic()
            with pytest.raises(TransientLogError, match="429"):
                await http.get("api/v1/log")
            assert time.monotonic() - t0 >= 0.9  # waited for Retry-After, not the 50 ms backoff
            assert http.bucket.rate < policy.requests_per_second  # and slowed down

    run(body)


def test_v1_bad_signature_is_rejected(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await h.admin("faults", {"bad_signature": True})
            with pytest.raises(CheckpointError, match="does not verify") as e:
                await h.v1.log_info()
            assert e.value.check == "checkpoint-signature"
            assert e.value.raw.startswith(h.trust.logs[0].key_name.rsplit(":", 1)[0] + " - ")

    run(body)


def test_v1_fork_fails_consistency(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            honest = (await h.v1.log_info()).active
            await h.admin("append", {"v1": 10})
            await h.admin("faults", {"fork_at": 350})
            forked = (await h.v1.log_info()).active  # validly signed, but a different tree
            proof = await h.v1.consistency_proof(honest.size, forked.size, forked.tree_id)
            with pytest.raises(ProofError, match="old root"):
                verify_consistency(
                    honest.size, forked.size, proof, honest.root_hash, forked.root_hash
                )

    run(body)


def test_v1_tampered_entry_does_not_hash_into_the_tree(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            await h.admin("faults", {"tamper": [450]})
            with pytest.raises(AssertionError):
                await _verify_v1_range(h, 300, 600)

    run(body)


def test_v1_shrinking_tree_is_visible(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path) as h:
            before = (await h.v1.log_info()).active
            await h.admin("faults", {"shrink_by": 5})
            after = (await h.v1.log_info()).active
            assert after.size == before.size - 5
            with pytest.raises(ProofError, match="shrank"):
                verify_consistency(before.size, after.size, [], before.root_hash, after.root_hash)

    run(body)


def test_v1_shard_rotation(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=2) as h:
            old = (await h.v1.log_info()).active
            await h.admin("rotate", {})
            await h.admin("append", {"v1": 40})
            info = await h.v1.log_info()
            assert info.inactive[-1].tree_id == old.tree_id
            assert info.inactive[-1].size == old.size
            assert info.active.tree_id != old.tree_id
            assert info.shards()[-1].start == 600
            new = await h.v1.entries(range(600, 640))
            rng = CompactRange()
            rng.extend(leaf_hash(new[i].body) for i in range(600, 640))
            assert rng.root() == info.active.root_hash

    run(body)


def test_no_redirect_off_host_and_size_cap(tmp_path: Path) -> None:
    async def body() -> None:
        app = web.Application()

        async def redirect(_: web.Request) -> web.Response:
            raise web.HTTPFound("http://evil.invalid/api/v1/log")

        async def big(_: web.Request) -> web.Response:
            return web.Response(body=b"x" * 5000)

        app.router.add_get("/api/v1/log", redirect)
        app.router.add_get("/big", big)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with harness(tmp_path) as h:
            http = LogHttp(
                f"http://127.0.0.1:{port}",
                h.session,
                log="evil",
                metrics=h.metrics,
                policy=HttpPolicy(**{**FAST.__dict__, "max_response_bytes": 1000}),
            )
            with pytest.raises(LogResponseError, match="refused a redirect off the log's host"):
                await http.get("api/v1/log")
            with pytest.raises(LogResponseError, match="exceeds 1000"):
                await http.get("big")
        await runner.cleanup()

    run(body)


def test_user_agent_is_versioned(tmp_path: Path) -> None:
    from monitor import __version__
    from monitor.logclient.http import USER_AGENT

    assert f"tlog-monitor/{__version__}" == USER_AGENT


# --- Rekor v2 ------------------------------------------------------------------------------


def test_v2_checkpoint_and_entries_prove_into_the_tree(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=700) as h:
            cp = await h.v2.checkpoint()
            assert cp.origin == h.v2.log.key_name
            assert cp.size == 700
            bodies = await h.v2.entries(0, 700, 700)
            rng = CompactRange()
            rng.extend(leaf_hash(b) for b in bodies)
            assert rng.root() == cp.root_hash
            # level-0 tiles are the leaf hashes
            tile = await h.v2.tile(0, 2, 700 % 256)
            assert tile == [leaf_hash(b) for b in bodies[512:700]]

    run(body)


def test_v2_partial_bundle_falls_back_to_full(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            partial = await h.v2.entry_bundle(2, 600 % 256)
            await h.admin("append", {"v2": 200})  # group 2 is now full; its partial is gone
            again = await h.v2.entry_bundle(2, 600 % 256)
            assert again == partial
            assert len(await h.v2.entry_bundle(2)) == 256

    run(body)


def test_v2_lies(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            honest = await h.v2.checkpoint()
            await h.admin("faults", {"bad_signature": True})
            with pytest.raises(CheckpointError) as e:
                await h.v2.checkpoint()
            assert e.value.check == "checkpoint-signature"
            assert e.value.raw.startswith(honest.origin)
            await h.admin("faults", {"bad_signature": False, "tamper": [10]})
            bodies = await h.v2.entries(0, 600, 600)
            rng = CompactRange()
            rng.extend(leaf_hash(b) for b in bodies)
            assert rng.root() != honest.root_hash
            await h.admin("faults", {"tamper": [], "fork_at": 5})
            forked = await h.v2.checkpoint()
            assert forked.size == honest.size
            assert forked.root_hash != honest.root_hash  # a changed tree for a known size

    run(body)


def test_v2_survives_transport_faults(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=1000) as h:
            await h.admin(
                "faults",
                {
                    "rate_429": 0.15,
                    "rate_5xx": 0.15,
                    "rate_truncate": 0.1,
                    "retry_after_seconds": 0,
                },
            )
            cp = await h.v2.checkpoint()
            bodies = await h.v2.entries(0, cp.size, cp.size)
            rng = CompactRange()
            rng.extend(leaf_hash(b) for b in bodies)
            assert rng.root() == cp.root_hash

    run(body)


# --- the simulator speaks the real formats ----------------------------------------------------


def _shape(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _shape(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_shape(doc[0])] if doc else []
    return type(doc).__name__


def test_sim_wire_formats_match_real_ones(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=3) as h:
            async with h.session.get(f"{h.sim.base_url}/api/v1/log") as resp:
                info = await resp.json()
            real_info = json.loads(
                (FIXTURES / "v1-api" / "loginfo.prod.RECONSTRUCTED.json").read_text()
            )
            assert _shape(info) == _shape(real_info)
            async with h.session.get(
                f"{h.sim.base_url}/api/v1/log/entries", params={"logIndex": "2"}
            ) as resp:
                entry = await resp.json()
            real = json.loads((FIXTURES / "v1-api" / "logentry.jar.prod.json").read_text())
            ((key, value),) = entry.items()
            ((real_key, real_value),) = real.items()
            assert len(key) == len(real_key) == 80
            value.pop("attestation", None)
            assert _shape(value) == _shape(real_value)
            async with h.session.get(f"{h.sim.base_url}/api/v1/log/entries?logIndex=9999") as r:
                assert r.status == 404
                assert await r.read() == b""
            async with h.session.post(
                f"{h.sim.base_url}/api/v1/log/entries/retrieve",
                json={"logIndexes": list(range(11))},
            ) as r:
                assert r.status == 422
            cp = (await h.v2.checkpoint()).raw
            assert cp.split("\n")[0] == h.v2.log.key_name

    run(body)


def test_planted_entries_appear_where_planted(tmp_path: Path) -> None:
    from monitor.entries import parse_entry
    from monitor.entries.record import CertificateSigner, KeySigner, SigningRecord

    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            key_pem = h.sim.state.v1.factory.bare_key_private_pem(0).decode()
            plans = [
                {"index": 601, "identity": {"email": "mallory@evil.example"}},
                {
                    "index": 602,
                    "identity": {"github": {"owner": "acme", "repo": "app", "ref": "refs/heads/x"}},
                },
                {"index": 603, "key_pem": key_pem},
                {"index": 604, "image": "ghcr.io/acme/app", "digest": "ab" * 32},
            ]
            for plan in plans:
                await h.admin("plant", plan)
            async with h.session.post(
                f"{h.sim.base_url}/admin/plant", json={"index": 5, "digest": "00" * 32}
            ) as r:
                assert r.status == 400
                assert "already in the log" in (await r.json())["message"]
            await h.admin("append", {"v1": 10, "v2": 10})
            got = await h.v1.entries([601, 602, 603, 604])
            records = {
                i: parse_entry(e.body, log="sim", index=i, attestation=e.attestation)
                for i, e in got.items()
            }
            r601, r602, r603, r604 = (records[i] for i in (601, 602, 603, 604))
            assert isinstance(r601, SigningRecord)
            assert isinstance(r601.signers[0], CertificateSigner)
            assert r601.signers[0].sans[0].value == "mallory@evil.example"
            assert isinstance(r602, SigningRecord)
            assert isinstance(r602.signers[0], CertificateSigner)
            assert r602.signers[0].extension("source-repository-ref") == "refs/heads/x"
            assert isinstance(r603, SigningRecord)
            assert isinstance(r603.signers[0], KeySigner)
            assert r603.signers[0].fingerprint == h.sim.state.v1.factory.bare_keys[0].fingerprint
            assert isinstance(r604, SigningRecord)
            assert [s.name for s in r604.subjects] == ["ghcr.io/acme/app"]

    run(body)


def test_new_v2_shard_is_discovered_without_a_restart(tmp_path: Path) -> None:
    from monitor.logclient.discovery import ShardDiscovery
    from monitor.logclient.v2 import RekorV2Client
    from monitor.trust import load_trust_root

    def load() -> TrustRoot:
        return load_trust_root(
            str(tmp_path / "trusted_root.json"), str(tmp_path / "signing_config.json")
        )

    async def body() -> None:
        async with harness(tmp_path, entries=300) as h:
            discovery = ShardDiscovery(load)
            first = discovery.refresh()
            assert [s.key_name for s in first.added] == [h.v2.log.key_name]
            assert discovery.refresh().added == ()
            await h.admin("v2-shard", {"name": "log2026-sim", "entries": 40})
            changes = discovery.refresh()
            (new,) = changes.added
            assert new.key_name.endswith("/log2026-sim")
            assert len(changes.current) == 2
            client = RekorV2Client(
                LogHttp(new.base_url, h.session, log="new", metrics=h.metrics, policy=FAST), new
            )
            cp = await client.checkpoint()
            assert (cp.origin, cp.size) == (new.key_name, 40)
            rng = CompactRange()
            rng.extend(leaf_hash(b) for b in await client.entries(0, 40, 40))
            assert rng.root() == cp.root_hash

    run(body)


def test_latency_gzip_and_fork_every_other(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=300) as h:
            # latency beyond the client's timeout is retried, then reported
            await h.admin("faults", {"latency_seconds": 0.4})
            slow = LogHttp(
                h.v2.http.base_url,
                h.session,
                log="slow",
                metrics=h.metrics,
                policy=HttpPolicy(**{**FAST.__dict__, "timeout_seconds": 0.1, "max_attempts": 2}),
            )
            with pytest.raises(TransientLogError, match="timed out"):
                await slow.get("checkpoint")
            await h.admin("faults", {"latency_seconds": 0.0})
            # tiles come gzip-compressed when asked
            url = f"{h.v2.http.base_url}tile/entries/000"
            async with h.session.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                assert r.headers["Content-Encoding"] == "gzip"
                assert len(await r.read()) > 256 * 2
            # a fork served to every other request: two different trees of the same size
            await h.admin("faults", {"fork_at": 3, "fork_every_other": True})
            roots = {(await h.v2.checkpoint()).root_hash for _ in range(4)}
            assert len(roots) == 2

    run(body)


def test_sim_bodies_and_tiles_have_the_real_shapes(tmp_path: Path) -> None:
    import base64

    def body_of(name: str) -> object:
        doc = json.loads((FIXTURES / name).read_text())
        tle = (
            doc["verificationMaterial"]["tlogEntries"][0] if "verificationMaterial" in doc else doc
        )
        return json.loads(base64.b64decode(tle["canonicalizedBody"]))

    real_v1 = body_of("v1-bundles/conformance.happy-path-v0.3.hashedrekord.sigstore.json")
    real_v2 = body_of("v2/sigstore-js.TLOG_HASHEDREKORDV002.prod.hashedrekord-v002.sigstore.json")

    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            v1 = await h.v1.entries(range(300, 400))
            kinds = {json.loads(e.body)["kind"]: json.loads(e.body) for e in v1.values()}
            assert _shape(kinds["hashedrekord"]) == _shape(real_v1)
            bodies = await h.v2.entries(0, 600, 600)
            v2_hr = [
                json.loads(b) for b in bodies if b'"hashedrekord"' in b and b'"publicKey"' in b
            ]
            assert v2_hr
            assert _shape(v2_hr[0]) == _shape(real_v2)
            # C2SP: a full hash tile is 256 hashes (8192 bytes); a partial one W hashes
            async with h.session.get(f"{h.v2.http.base_url}tile/0/000") as r:
                assert len(await r.read()) == 8192
            async with h.session.get(f"{h.v2.http.base_url}tile/0/002.p/88") as r:
                assert len(await r.read()) == 88 * 32
            async with h.session.get(f"{h.v2.http.base_url}tile/0/002.p/87") as r:
                assert len(await r.read()) == 87 * 32  # an older size's partial tile stays
            async with h.session.get(f"{h.v2.http.base_url}tile/0/002.p/89") as r:
                assert r.status == 404  # no tile beyond the tree
            async with h.session.get(f"{h.v2.http.base_url}tile/0/000.p/5") as r:
                assert r.status == 404  # gone once the full tile exists

    run(body)
