"""``tlog-monitor history`` and ``tlog-monitor findings`` over a real (SQLite) database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.findings import FindingKind
from monitor.rules.spec import Severity
from monitor.storage import Batch, IndexRow, Store
from tests.storage_support import T0, cert_record, finding_for, fp, key_record, run, sqlite_url

LOG = "rekor"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)

    async def fill() -> None:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            records = [
                cert_record(LOG, 1, sans=("alice@acme.com",), issuer="https://accounts.google.com"),
                cert_record(LOG, 2),
                key_record(LOG, 3, "leaked", time=1_760_000_003),
            ]
            findings = (
                finding_for(records[0], severity=Severity.CRITICAL, at=T0),
                finding_for(records[1], kind=FindingKind.WATCHED_USE, severity=Severity.LOW),
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
        finally:
            await store.close()

    run(fill)
    return url


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def _indexes(doc: dict[str, object]) -> list[object]:
    items = doc["items"]
    assert isinstance(items, list)
    return [i["index"] for i in items]


def test_history_filters_and_pages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["history", "--db", db, "--json"]
    assert _indexes(_json(capsys, [*base, "--san", "alice@acme.com"])) == [1]
    assert _indexes(_json(capsys, [*base, "--san", "https://github.com/*"])) == [2]
    assert _indexes(_json(capsys, [*base, "--fingerprint", fp("leaked")])) == [3]
    assert _indexes(
        _json(capsys, [*base, "--ext", "source-repository-uri=https://github.com/acme/app"])
    ) == [1, 2]
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
    assert main(["history", "--db", db, "--san", "nobody"]) == 0
    assert "nothing found" in capsys.readouterr().out


def test_findings_filters(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["findings", "--db", db, "--json"]
    assert _indexes(_json(capsys, base)) == [2, 1]
    assert _indexes(_json(capsys, [*base, "--severity", "high"])) == [1]
    assert _indexes(_json(capsys, [*base, "--kind", "watched_use"])) == [2]
    assert _indexes(_json(capsys, [*base, "--state", "resolved"])) == []
    assert _indexes(_json(capsys, [*base, "--rule", "acme-release", "--log", LOG])) == [2, 1]
    assert main(["findings", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "critical" in out
    assert "unexpected_signer" in out


def test_database_from_config(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "config" / "monitor.yaml").read_text()
    assert "sqlite+aiosqlite:///data/monitor.db" in text
    config = tmp_path / "monitor.yaml"
    config.write_text(text.replace("sqlite+aiosqlite:///data/monitor.db", db))
    doc = _json(capsys, ["history", "--config", str(config), "--json", "--san", "alice@acme.com"])
    assert _indexes(doc) == [1]


def test_bad_input_is_an_error(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.db")
    assert main(["history", "--db", missing]) == 2
    assert "db upgrade" in capsys.readouterr().err
    assert not Path(missing).exists()  # reading never creates a database
    assert main(["history", "--db", db, "--since", "yesterday"]) == 2
    assert main(["history", "--db", db, "--ext", "novalue"]) == 2
    assert main(["history", "--db", db, "--cursor", "garbage"]) == 2
    assert main(["findings", "--db", db, "--kind", "nonsense"]) == 2
    assert "unknown finding kind" in capsys.readouterr().err
