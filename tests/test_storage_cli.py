"""``tlog-monitor history`` and ``tlog-monitor findings`` over a real (SQLite) database: their
filters, what history says it searched, and every query that cannot match anything refused
with the closest known name instead of answered "nothing found"."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.main import main
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.storage import Batch, CheckpointData, IndexRow, Store
from tests.storage_support import T0, cert_record, finding_for, fp, key_record, run, sqlite_url

LOG = "rekor"
REPO = Path(__file__).resolve().parents[1]
WATCHED_FROM = 1  # the seed: tailing began at index 1; index 0 was backfilled


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)

    async def fill() -> None:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            # the first verified batch of a log is its start point (as the daemon seeds it)
            seed = CheckpointData("rekor.example - 1", 1, b"\x01" * 32, "note")
            await store.store_batch(Batch(LOG, WATCHED_FROM, checkpoint=seed))
            records = [
                cert_record(LOG, 1, sans=("alice@acme.com",), issuer="https://accounts.google.com"),
                cert_record(LOG, 2),
                key_record(LOG, 3, "leaked", time=1_760_000_003),
            ]
            expected = finding_for(records[1], kind=FindingKind.EXPECTED_USE, rule="acme-ok")
            findings = (
                finding_for(records[0], severity=Severity.CRITICAL, at=T0),
                finding_for(records[1], kind=FindingKind.WATCHED_USE, severity=Severity.LOW),
                # as the rule engine stores an expected use: a record, not in the open queue
                dataclasses.replace(expected, state=FindingState.RECORDED),
            )
            await store.store_batch(
                Batch(
                    LOG,
                    4,
                    records=tuple(records),
                    findings=findings,
                    index_rows=tuple(IndexRow.from_record(r, 0) for r in records),
                )
            )
            await store.store_batch(Batch(LOG, 1, backfill=(0, 1)))
        finally:
            await store.close()

    run(fill)
    return url


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def _indexes(doc: dict[str, Any]) -> list[object]:
    items = doc["items"]
    assert isinstance(items, list)
    return [i["index"] for i in items]


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one-line error of a command that must fail (exit 2), not answer empty."""
    assert main(argv) == 2, argv
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_history_filters_and_pages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["history", "--db", db, "--json"]
    assert _indexes(_json(capsys, [*base, "--san", "alice@acme.com"])) == [1]
    assert _indexes(_json(capsys, [*base, "--san", "https://github.com/*"])) == [2]
    assert _indexes(_json(capsys, [*base, "--fingerprint", fp("leaked")])) == [3]
    assert _indexes(_json(capsys, [*base, "--fingerprint", fp("leaked").upper()])) == [3]
    assert _indexes(_json(capsys, [*base, "--fingerprint", fp("leaked")[:20] + "*"])) == [3]
    repo = "https://github.com/acme/app"
    assert _indexes(_json(capsys, [*base, "--ext", f"source-repository-uri={repo}"])) == [1, 2]
    # an extension by its OID, as watch rules take it
    assert _indexes(_json(capsys, [*base, "--ext", f"1.3.6.1.4.1.57264.1.12={repo}"])) == [1, 2]
    assert _indexes(_json(capsys, [*base, "--index", "2..", "--log", LOG])) == [2, 3]
    assert _indexes(_json(capsys, [*base, "--index", "2"])) == [2]
    assert _indexes(
        _json(capsys, [*base, "--since", "1760000002", "--until", "2025-10-09T08:53:23Z"])
    ) == [2]
    assert _indexes(_json(capsys, [*base, "--all", "--issuer", "https://accounts.google.com"])) == [
        1
    ]
    first = _json(capsys, [*base, "--limit", "2"])
    assert _indexes(first) == [1, 2]
    cursor = first["next_cursor"]
    assert isinstance(cursor, str)
    assert _indexes(_json(capsys, [*base, "--limit", "2", "--cursor", cursor])) == [3]

    assert main(["history", "--db", db, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["LOG", "INDEX", "TIME", "(UTC)", "KIND", "SAN", "ISSUER"]
    assert "alice@acme.com" in out
    assert "more: --cursor" in out


def test_history_says_what_it_searched(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, ["history", "--db", db, "--json", "--san", "nobody@example.com"])
    assert doc["items"] == []
    (rekor,) = doc["searched"]
    assert (rekor["log"], rekor["from_index"], rekor["to_index"]) == (LOG, WATCHED_FROM, 3)
    assert rekor["backfilled"] == [{"from_index": 0, "to_index": 0}]
    assert rekor["from_time"] <= rekor["to_time"]

    assert main(["history", "--db", db, "--san", "nobody@example.com"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "nothing found"
    assert out[1].startswith(f"searched {LOG}: indexes {WATCHED_FROM}..3, watched from ")
    assert out[1].endswith("UTC; backfilled 0..0")
    assert len(out) == 2  # the backfill covers what came before: nothing left unsaid

    all_doc = _json(capsys, ["history", "--db", db, "--json", "--all", "--san", "nobody@x"])
    (indexed,) = all_doc["searched"]
    assert (indexed["log"], indexed["from_index"], indexed["to_index"]) == (LOG, 1, 3)


def test_history_without_a_backfill_says_earlier_entries_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_url(tmp_path)

    async def fill() -> None:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            seed = CheckpointData("rekor.example - 1", 500, b"\x01" * 32, "note")
            await store.store_batch(Batch(LOG, 500, checkpoint=seed))
            await store.store_batch(Batch(LOG, 600, checkpoint=seed))
        finally:
            await store.close()

    run(fill)
    assert main(["history", "--db", url, "--san", "x@example.com"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(f"searched {LOG}: indexes 500..599, watched from ")
    assert "not in the database unless backfilled" in out[2]


def test_history_refuses_what_cannot_match(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["history", "--db", db]
    err = _refused(capsys, [*base, "--ext", "source-repo-uri=https://github.com/acme/app"])
    assert "unknown Fulcio extension 'source-repo-uri'" in err
    assert "did you mean 'source-repository-uri'?" in err
    err = _refused(capsys, [*base, "--ext", "1.2.3.4=x"])
    assert "not a Fulcio extension" in err
    err = _refused(capsys, [*base, "--log", "rekr"])
    assert "unknown log 'rekr' (did you mean 'rekor'?); known: rekor" in err
    err = _refused(capsys, [*base, "--fingerprint", fp("leaked")[:20]])  # truncated
    assert "is not a whole fingerprint" in err
    assert "end it with * to search by a prefix" in err
    err = _refused(capsys, [*base, "--digest", "e8866cf1"])
    assert "is not a whole digest" in err
    err = _refused(capsys, [*base, "--all", "--fingerprint", fp("leaked")[:20] + "*"])
    assert "is not a whole fingerprint" in err
    err = _refused(capsys, [*base, "--all", "--ext", "issuer=x"])
    assert "keeps no extensions" in err
    err = _refused(capsys, [*base, "--cursor", "garbage"])
    assert "bad page cursor" in err


def test_findings_filters(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["findings", "--db", db, "--json"]
    assert _indexes(_json(capsys, base)) == [2, 2, 1]
    assert _indexes(_json(capsys, [*base, "--severity", "high"])) == [2, 1]
    # the triage queue: an expected use is a record, never in it
    assert _indexes(_json(capsys, [*base, "--state", "open", "--severity", "high"])) == [1]
    records = _json(capsys, [*base, "--kind", "expected_use"])
    assert [(i["rule"], i["state"]) for i in records["items"]] == [("acme-ok", "recorded")]
    assert _indexes(_json(capsys, [*base, "--state", "recorded"])) == [2]
    assert _indexes(_json(capsys, [*base, "--kind", "watched_use"])) == [2]
    assert _indexes(_json(capsys, [*base, "--state", "resolved"])) == []
    assert _indexes(_json(capsys, [*base, "--rule", "acme-release", "--log", LOG])) == [2, 1]
    assert main(["findings", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "critical" in out
    assert "unexpected_signer" in out


def test_findings_refuse_unknown_rules_and_logs(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(capsys, ["findings", "--db", db, "--rule", "no-such-rule"])
    assert "unknown rule 'no-such-rule'; known: acme-ok, acme-release" in err
    err = _refused(capsys, ["findings", "--db", db, "--rule", "acme-releese"])
    assert "did you mean 'acme-release'?" in err
    err = _refused(capsys, ["findings", "--db", db, "--log", "nosuch"])
    assert "unknown log 'nosuch'" in err
    # a rule the configuration names, with no finding yet: an empty answer is the truth
    config = tmp_path / "m.yaml"
    config.write_text(
        f"database:\n  url: {db}\n"
        "watch:\n  - name: new-rule\n    match: {san: x}\n    severity: low\n"
    )
    doc = _json(capsys, ["findings", "--config", str(config), "--json", "--rule", "new-rule"])
    assert doc["items"] == []


def test_database_from_config(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "config" / "monitor.yaml").read_text()
    shipped = "sqlite+aiosqlite:///../data/monitor.db"  # data/ beside config/
    assert shipped in text
    config = tmp_path / "monitor.yaml"
    config.write_text(text.replace(shipped, db))
    doc = _json(capsys, ["history", "--config", str(config), "--json", "--san", "alice@acme.com"])
    assert _indexes(doc) == [1]


def test_bad_input_is_an_error(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.db")
    assert main(["history", "--db", missing]) == 2
    assert "db upgrade" in capsys.readouterr().err
    assert not Path(missing).exists()  # reading never creates a database
    assert main(["history", "--db", db, "--since", "yesterday"]) == 2
    assert main(["history", "--db", db, "--ext", "novalue"]) == 2
    assert main(["findings", "--db", db, "--kind", "nonsense"]) == 2
    assert "unknown finding kind" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # a page is 1 to 10,000 items, said so
        main(["findings", "--db", db, "--limit", "10001"])
    assert exited.value.code == 2
    assert "a page size from 1 to 10000" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one database: --db or --config, not both
        main(["findings", "--db", db, "--config", str(tmp_path / "m.yaml")])
    assert "not allowed with" in capsys.readouterr().err
