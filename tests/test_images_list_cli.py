"""``tlog-monitor images list`` and ``tlog-monitor history --image`` over a real (SQLite)
database: tags and digests with their status and times, paging, a repository filter, JSON,
registry text escaped, and a bad reference refused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.main import main
from monitor.storage import (
    Batch,
    ImageDigestRecord,
    ImageScanRecord,
    ImageSignatureRecord,
    Store,
)
from tests.storage_support import T0, cert_record, run, sqlite_url

LOG = "rekor"
REPO = "ghcr.io/acme/app"
D1 = "sha256:" + "1" * 64
INDEX = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
HOSTILE_PLATFORM = "linux/\x1b[31mred\u202e"


def _sig(index: int) -> ImageSignatureRecord:
    return ImageSignatureRecord(LOG, index, f"{index:064x}", "signature", "valid", "ci", None)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)

    async def fill() -> None:
        store = await Store.open(url)
        try:
            await store.register_log(LOG, "v1", "https://rekor.example")
            records = tuple(cert_record(LOG, i) for i in range(3))
            await store.store_batch(Batch(LOG, 3, records=records, at=T0))
            await store.record_image_scan(
                ImageScanRecord(
                    REPO,
                    T0,
                    T0 + timedelta(seconds=3),
                    True,
                    (
                        ImageDigestRecord(D1, "unsigned", tags=("1.0",)),
                        ImageDigestRecord(INDEX, "signed", tags=("2.0",), signatures=(_sig(2),)),
                        ImageDigestRecord(
                            AMD64, "signed", index_digest=INDEX, platform=HOSTILE_PLATFORM
                        ),
                    ),
                )
            )
            await store.record_image_scan(
                ImageScanRecord(
                    "docker.io/library/alpine",
                    T0,
                    T0,
                    True,
                    (ImageDigestRecord(D1, "signed", tags=("3",), signatures=(_sig(1),)),),
                )
            )
        finally:
            await store.close()

    run(fill)
    return url


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def test_images_list_shows_tags_digests_and_status(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["images", "list", "--db", db, "--repository", REPO]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "REPOSITORY",
        "TAG",
        "DIGEST",
        "STATUS",
        "FIRST",
        "SEEN",
        "(UTC)",
        "LAST",
        "CHECKED",
        "(UTC)",
    ]
    assert f"{REPO}  1.0" in lines[2]
    assert D1 in lines[2]
    assert "unsigned" in lines[2]
    assert "2026-01-01 00:00:03" in lines[2]
    # the platform, from the registry, escaped: no terminal control reaches the screen
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "(linux/\\x1b[31mred\\u202e)" in lines[1]
    assert "alpine" not in out


def test_images_list_json_and_pages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, ["images", "list", "--db", db, "--json", "--limit", "2"])
    assert [(i["repository"], i["tag"]) for i in doc["items"]] == [
        ("docker.io/library/alpine", "3"),
        (REPO, None),
    ]
    assert doc["items"][1]["platform"] == HOSTILE_PLATFORM  # JSON keeps values exact
    assert doc["items"][1]["index_digest"] == INDEX
    rest = _json(capsys, ["images", "list", "--db", db, "--json", "--cursor", doc["next_cursor"]])
    assert [i["tag"] for i in rest["items"]] == ["1.0", "2.0"]
    assert rest["next_cursor"] is None
    # Docker Hub's short names are the repository as stored
    alpine = _json(capsys, ["images", "list", "--db", db, "--json", "--repository", "alpine"])
    assert [i["digest"] for i in alpine["items"]] == [D1]


def test_images_list_refuses_a_bad_repository(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "list", "--db", db, "--repository", "ghcr.io/Acme/App"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not a repository name" in err


def test_history_by_image(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, ["history", "--db", db, "--image", REPO, "--json"])
    assert [i["index"] for i in doc["items"]] == [2]
    assert doc["items"][0]["images"] == [{"repository": REPO, "tag": "2.0", "digest": INDEX}]
    doc = _json(capsys, ["history", "--db", db, "--image", f"{REPO}@{AMD64}", "--json"])
    assert [i["index"] for i in doc["items"]] == [2]
    doc = _json(capsys, ["history", "--db", db, "--image", "alpine:3", "--json"])
    assert [i["index"] for i in doc["items"]] == [1]
    doc = _json(capsys, ["history", "--db", db, "--image", f"{REPO}:1.0", "--json"])
    assert doc["items"] == []
    assert main(["history", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "IMAGES" in out.splitlines()[0]
    assert f"{REPO}:2.0@{INDEX}" in out
    assert f"docker.io/library/alpine:3@{D1}" in out


@pytest.mark.parametrize("bad", ["ghcr.io/acme/app@sha256:00", "Acme/App", "ghcr.io/acme/app:"])
def test_history_refuses_a_bad_image(db: str, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--db", db, "--image", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not an image" in err
