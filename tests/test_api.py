"""The HTTP API over loopback, on a database a real pass over the simulator filled (SQLite and
PostgreSQL): every query, every refusal, acknowledging and resolving, logs and readiness."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from monitor.core.status import LogStatus
from tests import storage_reads as reads
from tests.api_support import (
    ACME_AT,
    ADMIN_TOKEN,
    ARTIFACT_AT,
    MALLORY_AT,
    READ_TOKEN,
    SCRATCH,
    WRITE_TOKEN,
    Filled,
    fill,
    served,
)
from tests.daemon_support import ARTIFACT, ENGINES, database_url, pg_dbs
from tests.simlog import run

__all__ = ["pg_dbs"]

ENTRIES, FINDINGS, LOGS = "/api/v1/entries", "/api/v1/findings", "/api/v1/logs"


@pytest.fixture(scope="module", params=ENGINES)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    url = database_url(request.param, tmp, lambda: request.getfixturevalue("pg_dbs"), "api")
    return run(lambda: fill(tmp, url))


@pytest.fixture
def url(filled: Filled) -> str:
    return filled.url


def keys(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["log"], e["index"]) for e in items]


# -- authentication ----------------------------------------------------------------------------


def test_tokens_and_scopes(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            status, doc, headers = await c.call("GET", ENTRIES, token=None)
            assert status == 401
            assert doc["error"]["code"] == "unauthorized"
            assert headers["WWW-Authenticate"].startswith("Bearer")
            status, doc, headers = await c.call("GET", ENTRIES, token="not-a-token")
            assert status == 401
            assert doc["error"]["code"] == "invalid_token"
            assert 'error="invalid_token"' in headers["WWW-Authenticate"]
            status, doc, _ = await c.call(
                "GET", ENTRIES, token=None, headers={"Authorization": f"Basic {READ_TOKEN}"}
            )
            assert status == 401
            # write does not imply read, and read does not allow write
            assert (await c.get(ENTRIES, token=WRITE_TOKEN))[0] == 403
            status, doc, _ = await c.call("POST", f"{FINDINGS}/1/ack", token=READ_TOKEN)
            assert status == 403
            assert doc["error"]["code"] == "insufficient_scope"
            assert (await c.get(ENTRIES, token=ADMIN_TOKEN))[0] == 200
            # health is public by default, metrics are not
            assert (await c.get("/healthz", token=None)) == (200, {"status": "ok"})
            assert (await c.get("/metrics", token=None))[0] == 401
            status, text = await c.get("/metrics")
            assert status == 200
            assert "tlog_monitor_api_requests_total" in text
            assert (await c.get("/api/v1/openapi.json", token=None))[0] == 200
        async with served(url, metrics_public=True, health_public=False) as c:
            assert (await c.get("/metrics", token=None))[0] == 200
            assert (await c.get("/healthz", token=None))[0] == 401
            assert (await c.get("/readyz", token=READ_TOKEN))[0] == 200
        async with served(url, tokens=[]) as c:
            assert (await c.get(ENTRIES))[0] == 401  # no tokens: the API is closed

    run(body)


# -- signing history ---------------------------------------------------------------------------


def test_history_filters(url: str, filled: Filled) -> None:
    v1, v2 = filled.logs
    mallory = [(log, 200 + i) for log in (v1, v2) for i in MALLORY_AT]

    async def body() -> None:
        async with served(url) as c:
            assert keys(await c.pages(ENTRIES, {"san": "mallory@evil.example"})) == mallory
            assert keys(await c.pages(ENTRIES, {"san": "mallory@*"})) == mallory
            assert keys(await c.pages(ENTRIES, {"san": "mallory@evil.example", "log": v2})) == [
                (v2, 200 + i) for i in MALLORY_AT
            ]
            ranged = {"san": "mallory@*", "from_index": 230, "to_index": 277}
            assert keys(await c.pages(ENTRIES, ranged)) == [
                (log, 200 + i) for log in (v1, v2) for i in MALLORY_AT[1:]
            ]
            issuer = await c.pages(ENTRIES, {"issuer": "https://github.com/login/oauth"})
            assert set(mallory) <= set(keys(issuer))
            by_digest = await c.pages(ENTRIES, {"digest": f"sha256:{ARTIFACT}"})
            assert keys(by_digest) == [(v1, 200 + ARTIFACT_AT), (v2, 200 + ARTIFACT_AT)]
            assert keys(await c.pages(ENTRIES, {"digest": ARTIFACT})) == keys(by_digest)
            acme = await c.pages(
                ENTRIES, {"ext.source-repository-owner-uri": "https://github.com/acme"}
            )
            assert keys(acme) == [(v1, 200 + ACME_AT), (v2, 200 + ACME_AT)]
            fingerprint = acme[0]["key_fingerprint"]
            assert (v1, 200 + ACME_AT) in keys(await c.pages(ENTRIES, {"fingerprint": fingerprint}))
            # time: every matched entry of v1 has a time; a window around one finds it
            t = acme[0]["time"]
            around = await c.pages(ENTRIES, {"log": v1, "since": str(t), "until": str(t + 1)})
            assert (v1, 200 + ACME_AT) in keys(around)
            assert await c.pages(ENTRIES, {"log": v1, "until": "1970-01-02T00:00:00Z"}) == []
            # every entry (index_all): 320 per log, paged without loss or repeat
            every = await c.pages(ENTRIES, {"all": "true", "log": v1, "limit": 64})
            assert keys(every) == [(v1, i) for i in range(320)]
            # an empty answer says what it searched: each log, from where watching began
            status, doc = await c.get(ENTRIES, {"san": "nobody@example.com"})
            assert (status, doc["items"], doc["next_cursor"]) == (200, [], None)
            searched = {s["log"]: s for s in doc["searched"]}
            assert set(searched) == {v1, v2, SCRATCH}
            for log in (v1, v2):
                assert (searched[log]["from_index"], searched[log]["to_index"]) == (0, 319)
                assert searched[log]["from_time"] <= searched[log]["to_time"]
            status, doc = await c.get(ENTRIES, {"all": "true", "log": v2, "san": "nobody@x"})
            assert status == 200
            (only,) = doc["searched"]
            assert (only["log"], only["from_index"], only["to_index"]) == (v2, 0, 319)
            # an extension by its OID is the extension by its name
            by_oid = await c.pages(
                ENTRIES, {"ext.1.3.6.1.4.1.57264.1.16": "https://github.com/acme"}
            )
            assert keys(by_oid) == keys(acme)
            # a whole digest, or a prefix that says it is one
            prefix = await c.pages(ENTRIES, {"digest": f"sha256:{ARTIFACT[:12]}*"})
            assert keys(prefix) == keys(by_digest)
            upper = await c.pages(ENTRIES, {"fingerprint": fingerprint.upper()})
            assert (v1, 200 + ACME_AT) in keys(upper)

    run(body)


def test_history_pages_hold_together(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            whole = await c.pages(ENTRIES, {"limit": 1000})
            for size in (1, 3, 7):
                assert await c.pages(ENTRIES, {"limit": size}) == whole
            status, doc = await c.get(ENTRIES, {"limit": 2})
            assert status == 200
            assert len(doc["items"]) == 2
            assert doc["next_cursor"]

    run(body)


def test_one_entry_with_record_and_raw_body(url: str, filled: Filled) -> None:
    v1 = filled.logs[0]

    async def body() -> None:
        async with served(url) as c:
            status, doc = await c.get(f"{ENTRIES}/{v1}/{200 + MALLORY_AT[0]}")
            assert status == 200, doc
            assert doc["malformed"] is False
            assert doc["san"] == "mallory@evil.example"
            assert doc["record"]["signers"][0]["sans"][0]["value"] == "mallory@evil.example"
            stored = await c.store.entry(v1, 200 + MALLORY_AT[0])
            assert stored is not None
            assert base64.b64decode(doc["raw_body"]) == stored.raw_body
            status, doc = await c.get(f"{ENTRIES}/{SCRATCH}/7")
            assert status == 200
            assert doc["malformed"] is True
            assert doc["reason"] == "not JSON"
            assert base64.b64decode(doc["raw_body"]) == b"\xff\x00garbage"
            status, doc = await c.get(f"{ENTRIES}/{v1}/1")  # in index_all only: not kept whole
            assert status == 404
            assert "only entries that matched" in doc["error"]["message"]
            assert (await c.get(f"{ENTRIES}/{v1}/x"))[1]["error"]["param"] == "index"
            assert (await c.get(f"{ENTRIES}/{v1}/{2**64}"))[0] == 400
            status, doc = await c.get(f"{ENTRIES}/nolog/5")
            assert status == 404
            assert doc["error"]["message"].startswith("unknown log 'nolog'; known: ")
            status, doc = await c.get(f"{ENTRIES}/{v1[:-1]}/5")  # a typo of a log's name
            assert f"did you mean {v1!r}" in doc["error"]["message"]

    run(body)


BAD_HISTORY: list[tuple[dict[str, str], str]] = [
    ({"sans": "x"}, "sans"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"from_index": "-1"}, "from_index"),
    ({"from_index": "9", "to_index": "3"}, "to_index"),
    ({"to_index": str(2**63)}, "to_index"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2024-02-01", "until": "2024-01-01"}, "until"),
    ({"until": "99999-01-01"}, "until"),
    ({"all": "maybe"}, "all"),
    ({"all": "true", "subject": "x"}, "subject"),
    ({"ext.a": "1", "ext.b": "2"}, "ext.b"),
    ({"san": ""}, "san"),
    ({"san": "a" * 5000}, "san"),
    # what cannot match anything is refused, never answered with an empty page
    ({"ext.source-repo-uri": "https://github.com/acme/app"}, "ext.source-repo-uri"),
    ({"ext.1.2.3.4": "x"}, "ext.1.2.3.4"),  # not a Fulcio extension: history keeps none
    ({"log": "nosuch"}, "log"),
    ({"all": "true", "log": SCRATCH}, "log"),  # a log without index_all rows
    ({"fingerprint": "sha256:e8866cf1"}, "fingerprint"),  # truncated, not a prefix
    ({"digest": "e8866cf1"}, "digest"),
    ({"digest": "sha256:" + "ab" * 31}, "digest"),
    ({"all": "true", "fingerprint": "sha256:ab*"}, "fingerprint"),  # index_all: whole values
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
]


@pytest.mark.parametrize(("params", "param"), BAD_HISTORY)
def test_bad_history_parameters_are_400s_naming_them(
    url: str, params: dict[str, str], param: str
) -> None:
    async def body() -> None:
        async with served(url, max_page_size=1000) as c:
            status, doc = await c.get(ENTRIES, params)
            assert status == 400, doc
            assert doc["error"]["param"] == param, doc
            assert doc["error"]["message"]

    run(body)


def test_repeated_and_bad_cursor_parameters(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            status, doc = await c.get(ENTRIES, [("san", "a"), ("san", "b")])
            assert status == 400
            assert doc["error"]["param"] == "san"
            for path in (ENTRIES, FINDINGS, f"{LOGS}/{SCRATCH}/checkpoints"):
                for cursor in ("bm90IGEgY3Vyc29y", "%%%", "WyJ4Il0"):
                    status, doc = await c.get(path, {"cursor": cursor})
                    assert status == 400, (path, cursor)
                    assert doc["error"]["code"] == "bad_parameter"
                    assert doc["error"]["param"] == "cursor"
                    assert "cursor" in doc["error"]["message"]
            status, doc, _ = await c.call("DELETE", ENTRIES)
            assert status == 405
            assert doc["error"]["code"] == "method_not_allowed"
            status, doc = await c.get("/api/v1/nothing")
            assert status == 404
            assert doc["error"]["code"] == "not_found"

    run(body)


# -- findings ----------------------------------------------------------------------------------


def test_findings_filters_and_detail(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            every = await c.pages(FINDINGS, {"limit": 5})
            ids = [f["id"] for f in every]
            assert ids == sorted(ids, reverse=True)  # newest first
            mallory = await c.pages(FINDINGS, {"rule": "mallory"})
            assert len(mallory) == 2 * len(MALLORY_AT)
            assert all(f["severity"] == "high" and "evidence" not in f for f in mallory)
            high = await c.pages(FINDINGS, {"severity": "high"})
            assert {f["severity"] for f in high} <= {"high", "critical"}
            assert {f["id"] for f in mallory} <= {f["id"] for f in high}
            low = await c.pages(FINDINGS, {"severity": "low", "kind": "watched_use"})
            assert {f["rule"] for f in low} == {"mallory", "artifact", "acme"}
            both = await c.pages(FINDINGS, [("state", "open"), ("state", "acknowledged")])
            assert len(both) <= len(every)
            assert await c.pages(FINDINGS, {"since": "2999-01-01T00:00:00Z"}) == []
            # the queue: the most severe first, the oldest first within a severity, paged
            rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
            queue = await c.pages(FINDINGS, {"order": "severity", "limit": 3})
            assert [(rank[f["severity"]], f["id"]) for f in queue] == sorted(
                (rank[f["severity"]], f["id"]) for f in every
            )
            status, doc = await c.get(f"{FINDINGS}/{mallory[0]['id']}")
            assert status == 200
            assert doc["rule"] == "mallory"
            assert "evidence" in doc
            assert (await c.get(f"{FINDINGS}/999999"))[0] == 404
            for params, param in (
                ({"severity": "urgent"}, "severity"),
                ({"state": "closed"}, "state"),
                ({"kind": "nope"}, "kind"),
                ({"since": "x"}, "since"),
                ({"limit": "-3"}, "limit"),
                ({"rule": "no-such-rule"}, "rule"),
                ({"rule": "malory"}, "rule"),
                ({"log": "nosuch"}, "log"),
                ({"order": "oldest"}, "order"),
            ):
                status, doc = await c.get(FINDINGS, params)
                assert (status, doc["error"]["param"]) == (400, param)
            status, doc = await c.get(FINDINGS, {"rule": "malory"})
            assert "did you mean 'mallory'" in doc["error"]["message"]

    run(body)


def test_expected_uses_are_records_never_in_the_open_queue(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            queue = await c.pages(FINDINGS, {"state": "open", "severity": "high"})
            assert queue
            assert "expected_use" not in {f["kind"] for f in queue}
            records = await c.pages(FINDINGS, {"kind": "expected_use"})
            assert len(records) == 2  # the acme entry, in each log
            assert {(f["rule"], f["state"], f["severity"]) for f in records} == {
                ("acme-release", "recorded", "high")
            }
            recorded = await c.pages(FINDINGS, {"state": "recorded"})
            assert {f["id"] for f in recorded} == {f["id"] for f in records}

    run(body)


def test_acknowledge_and_resolve_record_who_and_tell_the_sinks(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            (f, *_) = await c.pages(FINDINGS, {"rule": "artifact"})
            path = f"{FINDINGS}/{f['id']}"
            status, doc, _ = await c.call(
                "POST", f"{path}/ack", token=ADMIN_TOKEN, json={"comment": "looking"}
            )
            assert status == 200, doc
            assert (doc["state"], doc["state_changed_by"], doc["comment"]) == (
                "acknowledged",
                "oncall",
                "looking",
            )
            assert doc["state_changed_at"]
            status, doc, _ = await c.call("POST", f"{path}/resolve", token=WRITE_TOKEN)
            assert status == 200
            assert doc["state"] == "resolved"
            assert doc["state_changed_by"] == "writer"
            # every sink that was sent the trigger is sent a resolve
            rows = await reads.outbox_for(c.store, f["dedup_key"])
            triggers = {r.sink for r in rows if r.event == "trigger"}
            assert triggers
            assert {r.sink for r in rows if r.event == "resolve"} == triggers
            for action in ("ack", "resolve"):
                status, doc, _ = await c.call("POST", f"{path}/{action}", token=WRITE_TOKEN)
                assert status == 409
                assert doc["error"]["code"] == "conflict"
            status, _, _ = await c.call("POST", f"{FINDINGS}/999999/resolve", token=WRITE_TOKEN)
            assert status == 404

    run(body)


def test_state_change_bodies_are_checked(url: str) -> None:
    async def body() -> None:
        async with served(url, max_request_bytes=1024) as c:
            (f, *_) = await c.pages(FINDINGS, {"rule": "acme"})
            ack = f"{FINDINGS}/{f['id']}/ack"
            json_type = {"Content-Type": "application/json"}
            cases: list[tuple[bytes, dict[str, str], int]] = [
                (b"{not json", json_type, 400),
                (b'{"comment": 5}', json_type, 400),
                (b'{"comment": "x", "who": "me"}', json_type, 400),
                (b'"just a string"', json_type, 400),
                (b"comment=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
                (b'{"comment": "' + b"x" * 2000 + b'"}', json_type, 413),
            ]
            for data, headers, expected in cases:
                status, doc, _ = await c.call(
                    "POST", ack, token=WRITE_TOKEN, data=data, headers=headers
                )
                assert status == expected, (data[:40], doc)
                assert doc["error"]["status"] == expected
            still = await c.store.finding(f["id"])
            assert still is not None
            assert str(still.finding.state) == "open"
            status, doc, _ = await c.call("POST", ack, token=WRITE_TOKEN, data=b"")
            assert status == 200
            assert doc["state"] == "acknowledged"
            assert doc["comment"] is None

    run(body)


# -- logs, readiness, metrics ------------------------------------------------------------------


def test_logs_and_their_checkpoints(url: str, filled: Filled) -> None:
    v1, v2 = filled.logs
    now = time.time()
    status_v2 = LogStatus(v2, cursor=320, log_size=320, last_success_at=now)
    status_v2.last_error = None

    async def body() -> None:
        async with served(url, statuses={v2: status_v2}) as c:
            status, doc = await c.get(LOGS)
            assert status == 200
            by_name = {log["name"]: log for log in doc["items"]}
            assert set(by_name) == {v1, v2, SCRATCH}
            assert by_name[v2]["tailed"]
            assert not by_name[v1]["tailed"]
            assert by_name[v2]["lag_entries"] == 0
            assert by_name[v2]["cursor"] == 320
            assert by_name[v2]["last_success_at"] is not None
            latest = by_name[v2]["latest_checkpoint"]
            assert latest["size"] == 320
            assert latest["verified"]
            assert latest["note"]
            assert by_name[SCRATCH]["latest_checkpoint"] is None
            history = await c.pages(f"{LOGS}/{v2}/checkpoints", {"limit": 1})
            sizes = [cp["size"] for cp in history]
            assert sizes[0] == 320
            assert sorted(sizes, reverse=True) == sizes
            assert len(sizes) >= 3
            assert history == await c.pages(f"{LOGS}/{v2}/checkpoints", {"limit": 100})
            assert (await c.get(f"{LOGS}/nope/checkpoints"))[0] == 404

    run(body)


def test_readiness(url: str, filled: Filled) -> None:
    v1, v2 = filled.logs
    now = 1_800_000_000.0
    fresh = LogStatus(v1, last_success_at=now - 10)
    stale = LogStatus(
        v2,
        last_success_at=now - 3600,
        last_error="TransientLogError: GET http://10.0.0.7/x failed: HTTP 503",
        last_reason="log_server_error",
    )

    async def body() -> None:
        async with served(url, statuses={v1: fresh}, clock=lambda: now, ready_within=300) as c:
            status, doc = await c.get("/readyz", token=None)
            assert (status, doc["status"], doc["logs"]) == (200, "ready", {v1: "ok"})
        statuses = {v1: fresh, v2: stale}
        async with served(url, statuses=statuses, clock=lambda: now, ready_within=300) as c:
            status, doc = await c.get("/readyz", token=None)
            assert status == 503
            assert doc["status"] == "not_ready"
            assert doc["database"] == "ok"
            assert "not verified since" in doc["logs"][v2]
            # the reason, classified; never the error's text (this page may be public)
            assert doc["logs"][v2].endswith(" (log_server_error)")
            assert "10.0.0.7" not in json.dumps(doc)
        # a lie makes the log not ready at once, whatever the time since the last success
        lying = {v1: LogStatus(v1, last_success_at=now - 1, lie="consistency_failure")}
        async with served(url, statuses=lying, clock=lambda: now, ready_within=300) as c:
            status, doc = await c.get("/readyz", token=None)
            assert (status, doc["logs"][v1]) == (503, "integrity failure (consistency_failure)")
        starting = {v1: LogStatus(v1)}
        async with served(url, statuses=starting, clock=lambda: now) as c:
            status, doc = await c.get("/readyz", token=None)
            assert status == 503
            assert "not verified yet" in doc["logs"][v1]

    run(body)


def test_request_metrics_use_route_templates(url: str, filled: Filled) -> None:
    async def body() -> None:
        async with served(url) as c:
            await c.get(f"{ENTRIES}/{filled.logs[0]}/{200 + MALLORY_AT[0]}")
            await c.get(f"{ENTRIES}/secret-looking-name/1")
            await c.get(ENTRIES, token=None)
            await c.get("/no/such/path/mallory@evil.example")
            _, text = await c.get("/metrics")
        assert (
            'tlog_monitor_api_requests_total{method="GET",route="/api/v1/entries/{log}/{index}",'
            'status="200"} 1.0' in text
        )
        assert 'route="/api/v1/entries",status="401"' in text
        assert 'route="other",status="404"' in text
        assert "secret-looking-name" not in text
        assert "mallory" not in text

    run(body)
