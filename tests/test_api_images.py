"""History by image over the HTTP API (SQLite and PostgreSQL): ``?image=`` takes a repository
or a reference, items carry their images, a bad reference is a JSON 400 naming ``image``, and
registry findings carry theirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.core.findings import Finding, FindingImage, FindingKind, Severity, dedup_key
from monitor.storage import Batch, ImageDigestRecord, ImageScanRecord, ImageSignatureRecord
from monitor.storage.store import Store
from tests.api_support import served
from tests.storage_support import (
    ENGINES,
    T0,
    PgDatabases,
    cert_record,
    pg_databases_fixture,
    require_postgres,
    run,
    sqlite_url,
)

LOG = "rekor.example"
REPO = "ghcr.io/acme/app"
D1 = "sha256:" + "1" * 64
INDEX = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
ENTRIES, FINDINGS = "/api/v1/entries", "/api/v1/findings"

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


def _sig(index: int) -> ImageSignatureRecord:
    return ImageSignatureRecord(LOG, index, f"{index:064x}", "signature", "valid", "ci", None)


async def _fill(url: str) -> None:
    store = await Store.open(url)
    try:
        await store.register_log(LOG, "v1", "https://rekor.example")
        records = tuple(cert_record(LOG, i) for i in range(4))
        await store.store_batch(Batch(LOG, 4, records=records, at=T0))
        scan = ImageScanRecord(
            REPO,
            T0,
            T0,
            True,
            (
                ImageDigestRecord(D1, "signed", tags=("1.0",), signatures=(_sig(1),)),
                ImageDigestRecord(INDEX, "signed", tags=("2.0",), signatures=(_sig(2),)),
                ImageDigestRecord(AMD64, "signed", index_digest=INDEX, platform="linux/amd64"),
            ),
        )
        await store.record_image_scan(scan)
        unsigned = Finding(
            FindingKind.UNSIGNED_IMAGE,
            Severity.HIGH,
            dedup_key("unsigned", REPO, D1),
            detail="no signature",
            image=FindingImage(REPO, "1.0", D1),
            created_at=T0,
        )
        await store.store_findings([unsigned])
    finally:
        await store.close()


@pytest.fixture(scope="module", params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        found = sqlite_url(tmp_path_factory.mktemp("api-images"))
    else:
        require_postgres()
        dbs: PgDatabases = request.getfixturevalue("pg_dbs")
        found = dbs.create(migrated=True)
    run(lambda: _fill(found))
    return found


def _indexes(items: list[dict[str, Any]]) -> list[int]:
    return [e["index"] for e in items]


def test_history_by_image_and_the_images_of_each_item(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            assert _indexes(await c.pages(ENTRIES, {"image": REPO})) == [1, 2]
            assert _indexes(await c.pages(ENTRIES, {"image": f"{REPO}:1.0"})) == [1]
            assert _indexes(await c.pages(ENTRIES, {"image": f"{REPO}@{AMD64}"})) == [2]
            assert _indexes(await c.pages(ENTRIES, {"image": "ghcr.io/acme/none"})) == []
            every = await c.pages(ENTRIES, {"log": LOG})
            assert [e["images"] for e in every] == [
                [],
                [{"repository": REPO, "tag": "1.0", "digest": D1}],
                [{"repository": REPO, "tag": "2.0", "digest": INDEX}],
                [],
            ]
            status, doc = await c.get(f"{ENTRIES}/{LOG}/2")
            assert status == 200
            assert doc["images"] == [{"repository": REPO, "tag": "2.0", "digest": INDEX}]

    run(body)


@pytest.mark.parametrize(
    "bad", ["ghcr.io/Acme/app", f"{REPO}@sha256:abc", f"{REPO}:a b", "/", "x" * 300]
)
def test_a_bad_image_is_a_400_naming_it(url: str, bad: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            status, doc = await c.get(ENTRIES, {"image": bad})
            assert status == 400, doc
            assert doc["error"]["param"] == "image"
            assert "is not an image" in doc["error"]["message"]

    run(body)


def test_a_registry_finding_carries_its_image(url: str) -> None:
    async def body() -> None:
        async with served(url) as c:
            status, doc = await c.get(FINDINGS, {"kind": "unsigned_image"})
            assert status == 200
            (f,) = doc["items"]
            assert f["image"] == {"repository": REPO, "tag": "1.0", "digest": D1}
            status, one = await c.get(f"{FINDINGS}/{f['id']}")
            assert one["image"] == f["image"]

    run(body)


def test_other_findings_carry_none(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)

    async def body() -> None:
        store = await Store.open(url)
        try:
            f = Finding(FindingKind.HEALTH, Severity.LOW, "k", type="lag", created_at=T0)
            await store.store_findings([f])
            stored = await store.finding_by_key("k")
            assert stored is not None
            assert stored.finding.image is None
            assert stored.to_json()["image"] is None
        finally:
            await store.close()

    run(body)
