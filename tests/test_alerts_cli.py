"""``tlog-monitor alerts test|dead|replay`` and delivery by ``once``, as a user runs them: in
child processes, against real receivers on loopback; ``once`` killed in the middle of a
delivery loses nothing and, after the receiver drops repeats, doubles nothing; nor does the
daemon (``run``) killed in the middle of one, which also keeps the outbox's order."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from monitor.alerts.causes import error_cause
from monitor.alerts.deliver import SinkWorker
from monitor.config.models import AlertSettings, SinkSettings
from monitor.storage.base import OUTBOX
from monitor.storage.batch import OutboxSpec
from monitor.storage.store import Store
from tests.alert_receivers import (
    ALERTMANAGER,
    HOOK,
    PAGERDUTY,
    SLACK,
    Receiver,
    Reply,
    finding_keys,
)
from tests.daemon_support import ARTIFACT, MALLORY, SINKS, write_config
from tests.simlog import Harness, harness, run
from tests.storage_support import cert_record, finding_for

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")
SECRET = SINKS[0]["secret"]
SLACK_PATH = "/T1/B2/s3cr3tSl4ckP4th"
ROUTING_KEY = "cl1R0ut1ngK3yS3cret0123456789ab"
AM_CREDENTIALS = "amUs3r:amP4ssw0rd"
LOG = "rekor.example"


async def cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TLOG_MONITOR, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config(path: Path, db: Path, sinks: list[dict[str, Any]]) -> Path:
    """A configuration with one (unused) log, the database ``db`` and ``sinks``."""
    doc = {
        "logs": [{"name": "v1", "api": "v1", "url": "https://rekor.example"}],
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "alerts": {"sinks": sinks},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sinks_for(ok: Receiver, failing: Receiver) -> list[dict[str, Any]]:
    return [
        {"name": "soc", "type": "webhook", "url": ok.url(HOOK), "secret": SECRET},
        {"name": "chat", "type": "slack", "url": ok.url(SLACK + SLACK_PATH)},
        {"name": "pd", "type": "pagerduty", "url": ok.url(PAGERDUTY), "routing_key": ROUTING_KEY},
        {  # the base URL, with credentials: the sink posts to /api/v2/alerts under it
            "name": "am",
            "type": "alertmanager",
            "url": f"http://{AM_CREDENTIALS}@127.0.0.1:{ok.port}/am",
        },
        {"name": "broken", "type": "webhook", "url": failing.url(HOOK), "secret": SECRET},
    ]


def test_alerts_test_sends_a_marked_test_alert(tmp_path: Path) -> None:
    async def body() -> None:
        async with Receiver(secret=SECRET) as ok, Receiver(secret=SECRET) as failing:
            failing.script(HOOK, [], then=500)
            sinks = sinks_for(ok, failing)
            cfg = config(tmp_path / "m.yaml", tmp_path / "m.db", sinks)
            names = ("soc", "chat", "pd", "am", "broken", "nope")
            results = await asyncio.gather(
                *(cli("alerts", "test", "--sink", n, "--config", str(cfg)) for n in names)
            )
            kinds = {s["name"]: s["type"] for s in sinks}
            for name, (code, out, err) in zip(names[:4], results[:4], strict=True):
                kind = kinds[name]
                assert code == 0, (name, out, err)
                assert f"sink {name} ({kind}, 127.0.0.1): test alert accepted (HTTP 20" in out
            (bcode, bout, berr), (ncode, _, nerr) = results[-2:]
            assert bcode == 1, berr
            assert (
                "sink broken (webhook, 127.0.0.1): test alert FAILED: "
                "HTTP 500 Internal Server Error" in bout
            )
            assert ncode == 2
            assert str(cfg) in nerr
            assert "unknown sink 'nope'; known: am, broken, chat, pd, soc" in nerr
            assert "Traceback" not in nerr
            secrets = (SECRET, SLACK_PATH, SLACK_PATH.rsplit("/", 1)[1], ROUTING_KEY)
            for _, output, errors in results:
                for secret in (*secrets, AM_CREDENTIALS, AM_CREDENTIALS.split(":")[1]):
                    assert secret not in output + errors

            (hook,) = ok.at(HOOK)
            assert hook.signature_valid is True
            assert hook.json["type"] == "test"
            assert hook.json["sink"] == "soc"
            (finding,) = hook.json["findings"]
            assert finding["kind"] == "test"
            assert finding["dedup_key"].startswith("test-")
            assert "TEST" in finding["detail"]
            assert len(failing.at(HOOK)) == 1

            (slack,) = ok.at(SLACK)
            assert slack.full_path == SLACK + SLACK_PATH
            assert "TEST" in slack.json["text"]
            assert "No action is needed" in slack.body.decode()
            (pd,) = ok.at(PAGERDUTY)
            assert pd.status == 202
            assert pd.json["event_action"] == "trigger"
            assert "TEST" in pd.json["payload"]["summary"]
            assert pd.json["payload"]["severity"] == "info"
            assert pd.json["routing_key"] == ROUTING_KEY
            (am,) = ok.at(ALERTMANAGER)
            assert am.full_path == "/am" + ALERTMANAGER
            assert am.headers["authorization"].startswith("Basic ")
            assert am.json[0]["labels"]["test"] == "true"

    run(body)


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A TLS server context with a certificate no client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_alerts_test_names_the_cause_of_a_failure(tmp_path: Path) -> None:
    """Connection refused, TLS (a certificate that does not verify, a server that does not
    speak TLS), the HTTP status: each said in words, never the URL."""

    async def body() -> None:
        app = web.Application()

        async def unavailable(_: web.Request) -> web.Response:
            return web.Response(status=503)

        app.router.add_post(HOOK, unavailable)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tls = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_self_signed(tmp_path))
        plain = web.TCPSite(runner, "127.0.0.1", 0)
        await tls.start()
        await plain.start()
        tls_port, plain_port = (int(a[1]) for a in runner.addresses)
        try:
            urls = {
                "refused": f"http://127.0.0.1:{_closed_port()}{HOOK}",
                "untrusted": f"https://127.0.0.1:{tls_port}{HOOK}",
                "not-tls": f"https://127.0.0.1:{plain_port}{HOOK}",
                "unavailable": f"http://127.0.0.1:{plain_port}{HOOK}",
            }
            sinks = [
                {"name": n, "type": "webhook", "url": u, "secret": SECRET} for n, u in urls.items()
            ]
            cfg = config(tmp_path / "m.yaml", tmp_path / "m.db", sinks)
            causes = {}
            results = await asyncio.gather(
                *(cli("alerts", "test", "--sink", n, "--config", str(cfg), "--json") for n in urls)
            )
            for name, (code, out, err) in zip(urls, results, strict=True):
                assert code == 1, (out, err)
                doc = json.loads(out)
                assert (doc["sink"], doc["accepted"]) == (name, False)
                causes[name] = doc["cause"]
                assert HOOK not in out + err  # a URL's path may be its secret
        finally:
            await runner.cleanup()
        assert causes == {
            "refused": "connection refused by 127.0.0.1 (nothing listens on that port)",
            "untrusted": "TLS: the certificate of 127.0.0.1 does not verify "
            "(self-signed certificate)",
            "not-tls": "TLS: the handshake with 127.0.0.1 failed",
            "unavailable": "HTTP 503 Service Unavailable",
        }

    run(body)
    # a name that does not resolve (made here: the tests never ask a real resolver)
    key = ConnectionKey("hooks.example", 443, True, True, None, None, None, None)
    dns = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
    cause = error_cause(dns, "hooks.example", 10.0)
    assert cause == "DNS: the name hooks.example cannot be resolved"
    assert error_cause(TimeoutError(), "hooks.example", 2.5) == (
        "no answer from hooks.example within 2.5s"
    )


@pytest.mark.slow
def test_alerts_dead_lists_and_replay_requeues(tmp_path: Path) -> None:
    async def body() -> None:
        async with Receiver(secret=SECRET) as receiver:
            db = tmp_path / "m.db"
            sink = {
                "name": "soc",
                "type": "webhook",
                "url": receiver.url(HOOK),
                "secret": SECRET,
                "group_window": "0s",
            }
            cfg = config(tmp_path / "m.yaml", db, [sink])
            store = await Store.open(f"sqlite+aiosqlite:///{db}")
            try:
                await store.register_log(LOG, "v1", "https://rekor.example")
                f = finding_for(cert_record(LOG, 12), rule="acme-release")
                await store.store_findings([f], outbox=[OutboxSpec(f.dedup_key, ("soc",))])
                receiver.script(HOOK, [400])
                async with aiohttp.ClientSession() as session:
                    worker = SinkWorker(
                        SinkSettings.model_validate(sink), store, session, AlertSettings()
                    )
                    assert await worker.step() == 0.0
                    (dead,) = await store.dead_letters()

                    code, out, err = await cli("alerts", "dead", "--jsonl", "--config", str(cfg))
                    assert code == 0, err
                    (row,) = [json.loads(line) for line in out.splitlines()]
                    code, out, err = await cli("alerts", "dead", "--json", "--config", str(cfg))
                    assert code == 0, err
                    assert json.loads(out) == {"items": [row]}
                    # a sink the configuration names, or the outbox: no other
                    code, out, err = await cli(
                        "alerts", "dead", "--sink", "sco", "--config", str(cfg)
                    )
                    assert (code, out) == (2, "")
                    assert "unknown sink 'sco' (did you mean 'soc'?)" in err
                    assert row["id"] == dead.id
                    assert row["sink"] == "soc"
                    assert row["dedup_key"] == f.dedup_key
                    assert (row["rule"], row["log"], row["index"]) == ("acme-release", LOG, 12)
                    assert row["last_error"] == "refused: HTTP 400"

                    missing = str(dead.id + 100)
                    code, out, err = await cli(
                        "alerts", "replay", str(dead.id), missing, "--config", str(cfg)
                    )
                    assert code == 1, err  # one of the ids is no dead letter
                    assert "1 dead letters queued again" in out
                    assert f"not dead letters: {missing}" in out
                    assert [o.id for o in await store.pending_outbox("soc")] == [dead.id]
                    assert await store.dead_letters() == []

                    assert await worker.step() == 0.0  # the running monitor delivers it
                    assert await store.pending_outbox("soc") == []
                    assert [r.status for r in receiver.at(HOOK)] == [400, 200]
            finally:
                await store.close()

    run(body)


async def plant_findings(h: Harness) -> None:
    """Six planted matches in 20 new entries of each log: 12 findings to deliver."""
    for i in (301, 303, 305, 309, 311):
        await h.admin("plant", {"index": i, "identity": MALLORY})
    await h.admin("plant", {"index": 307, "digest": ARTIFACT})
    await h.admin("append", {"v1": 20, "v2": 20})


def test_alerts_dead_lists_a_row_that_could_not_be_read(tmp_path: Path) -> None:
    async def body() -> None:
        db = tmp_path / "m.db"
        sink = {"name": "soc", "type": "webhook", "url": "http://127.0.0.1:9/hook"}
        cfg = config(tmp_path / "m.yaml", db, [{**sink, "secret": SECRET}])
        store = await Store.open(f"sqlite+aiosqlite:///{db}")
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            f = finding_for(cert_record(LOG, 12), rule="acme-release")
            await store.store_findings([f], outbox=[OutboxSpec(f.dedup_key, ("soc",))])
            async with store.engine.begin() as conn:
                await conn.execute(OUTBOX.update().values(payload="garbage"))
            settings = SinkSettings.model_validate({**sink, "secret": SECRET})
            async with aiohttp.ClientSession() as session:
                worker = SinkWorker(settings, store, session, AlertSettings())
                assert await worker.step() == 0.0  # dead-lettered, never posted
        finally:
            await store.close()
        code, out, err = await cli("alerts", "dead", "--jsonl", "--config", str(cfg))
        assert code == 0, err
        (row,) = [json.loads(line) for line in out.splitlines()]
        assert (row["dedup_key"], row["kind"]) == (f.dedup_key, None)
        assert row["last_error"] == "cannot be read: finding: expected an object"

    run(body)


@pytest.mark.slow
def test_once_killed_mid_delivery_delivers_everything_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=2) as h, Receiver(secret=SECRET) as rx:
            await plant_findings(h)
            sink = {**SINKS[0], "url": rx.url(HOOK), "timeout": "60s"}
            logs = {"start": 290}
            cfg = write_config(
                tmp_path / "m.yaml", h.sim, tmp_path, url, v1=logs, v2=logs, sinks=[sink]
            )
            # the first message is taken at once, the second hangs: the monitor is killed
            # while it waits for the answer (the receiver took it, as a slow receiver does)
            rx.script(HOOK, [Reply(200), Reply(200, delay=60.0)])
            proc = await asyncio.create_subprocess_exec(
                TLOG_MONITOR,
                "once",
                "--config",
                str(cfg),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await rx.wait_for(lambda: len(rx.requests) >= 2, timeout=60)
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            assert proc.returncode == -signal.SIGKILL

            code, out, err = await cli("once", "--config", str(cfg))
            assert code == 0, (out, err)  # nothing new: the findings were stored before
            assert "alerts:" not in out  # nothing left waiting

            store = await Store.open(url, migrate=False)
            try:
                async with store.engine.connect() as conn:
                    stored = list(
                        (await conn.execute(select(OUTBOX.c.dedup_key).order_by(OUTBOX.c.id)))
                        .scalars()
                        .all()
                    )
                assert await store.pending_outbox("soc") == []
            finally:
                await store.close()
            assert len(stored) == 12  # 6 planted in each log
            assert all(r.signature_valid for r in rx.requests)
            # the message in flight at the kill came twice, with the same webhook-id
            ids = Counter(r.headers["webhook-id"] for r in rx.requests)
            assert ids.most_common(1)[0][1] == 2
            assert rx.requests[1].duplicate is False
            assert [r for r in rx.requests if r.duplicate] != []
            # after dropping repeats, every finding arrived exactly once
            arrived = Counter(finding_keys(rx.unique(HOOK)))
            assert sorted(arrived) == sorted(stored)
            assert set(arrived.values()) == {1}

    run(body)


async def _until_received(
    rx: Receiver,
    predicate: Callable[[], bool],
    proc: asyncio.subprocess.Process,
    log: Path,
    timeout: float = 90.0,
) -> None:
    """Until ``predicate()`` holds for ``rx``; fails at once, with the daemon's log, if the
    daemon exits first."""
    arrived = asyncio.ensure_future(rx.wait_for(predicate, timeout))
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({arrived, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
        if not arrived.done():
            arrived.cancel()
    if not arrived.done() or arrived.cancelled():
        raise AssertionError(f"daemon exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
    arrived.result()  # a timeout raises here


async def _until_drained(
    store: Store, sink: str, proc: asyncio.subprocess.Process, log: Path, timeout: float = 90.0
) -> None:
    """Until no row of ``sink`` waits in the outbox of the running daemon ``proc``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await store.pending_outbox(sink):
        if proc.returncode is not None:
            raise AssertionError(f"daemon exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"outbox of {sink} not drained:\n{log.read_text()[-4000:]}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
def test_daemon_killed_mid_delivery_delivers_everything_once_in_order(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    planted = 12  # 6 planted in each log

    async def daemon(cfg: Path, log: Path) -> asyncio.subprocess.Process:
        with log.open("ab") as out:  # the child keeps its own descriptor
            return await asyncio.create_subprocess_exec(
                TLOG_MONITOR,
                "run",
                "--config",
                str(cfg),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=out,
            )

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=2) as h, Receiver(secret=SECRET) as rx:
            await plant_findings(h)
            # one message per finding (no group window), with no rate limit to speak of
            sink = {
                **SINKS[0],
                "url": rx.url(HOOK),
                "timeout": "60s",
                "group_window": "0s",
                "rate_limit_per_minute": 6000,
            }
            logs = {"start": 290}
            cfg = write_config(
                tmp_path / "m.yaml", h.sim, tmp_path, url, v1=logs, v2=logs, sinks=[sink]
            )
            log = tmp_path / "daemon.log"
            # two messages are taken at once, the third hangs: the daemon is killed while it
            # waits for the answer (the receiver took it, as a slow receiver does)
            rx.script(HOOK, [Reply(200), Reply(200), Reply(200, delay=60.0)])
            proc = await daemon(cfg, log)
            try:
                await _until_received(rx, lambda: len(rx.requests) >= 3, proc, log)
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)
                await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            held = rx.requests[2]
            assert held.new_keys != ()  # the held message was new, not a repeat

            proc = await daemon(cfg, log)
            store = await Store.open(url, migrate=False)
            try:
                try:
                    await _until_received(
                        rx, lambda: len(set(finding_keys(rx.unique(HOOK)))) >= planted, proc, log
                    )
                    # the last answer is recorded just after the receiver gave it
                    await _until_drained(store, "soc", proc, log)
                finally:
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(proc.wait(), 20)
                assert code == 0, log.read_text()[-4000:]
                o = OUTBOX.c
                async with store.engine.connect() as conn:
                    stmt = select(o.dedup_key, o.event).where(o.sink == "soc").order_by(o.id)
                    rows = (await conn.execute(stmt)).all()
                assert await store.pending_outbox("soc") == []
            finally:
                await store.close()
            created = [key for key, _ in rows]
            assert len(created) == planted
            assert {event for _, event in rows} == {"trigger"}
            assert all(r.signature_valid for r in rx.requests)
            assert all(r.processed for r in rx.requests)
            # the message in flight at the kill came again after the restart, as it was
            again = [
                r for r in rx.requests[3:] if r.headers["webhook-id"] == held.headers["webhook-id"]
            ]
            assert len(again) == 1
            assert again[0].duplicate
            assert finding_keys(again) == finding_keys([held])
            # after dropping repeats by webhook-id, every finding arrived exactly once
            ids = Counter(r.headers["webhook-id"] for r in rx.requests)
            assert sorted(ids.values()) == [1] * (planted - 1) + [2]
            first = rx.unique(HOOK)
            assert [r.headers["webhook-id"] for r in first] == list(dict.fromkeys(ids))
            arrived = Counter(finding_keys(first))
            assert sorted(arrived) == sorted(created)
            assert set(arrived.values()) == {1}
            # and in the order the outbox created them: nothing overtook an earlier message,
            # not even across the kill
            assert finding_keys(first) == created

    run(body)
