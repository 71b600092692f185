"""Container images in the store, on both engines: registry passes recorded (first_seen kept,
links upserted, all in one transaction), digests paged, links by entry, the last complete
pass, a rule's unlinked entries, and history by image."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.core.errors import MalformedInputError, QueryError, StorageError
from monitor.core.findings import FindingImage, FindingKind
from monitor.storage import (
    Batch,
    HistoryQuery,
    ImageDigestRecord,
    ImageScanRecord,
    ImageSignatureRecord,
    IndexRow,
    Store,
)
from monitor.storage.images import IMAGE_SCANS
from monitor.storage.models import clean_text
from monitor.storage.query_check import history_answer
from tests.contract_support import LOG, with_store
from tests.storage_support import (
    ENGINES,
    T0,
    PgDatabases,
    cert_record,
    finding_for,
    pg_databases_fixture,
    require_postgres,
    sqlite_url,
)

REPO = "ghcr.io/acme/app"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
INDEX = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
ARM64 = "sha256:" + "c" * 64

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    require_postgres()
    dbs: PgDatabases = request.getfixturevalue("pg_dbs")
    return dbs.create(migrated=True)


def sig(index: int, role: str = "signature", **more: str | None) -> ImageSignatureRecord:
    return ImageSignatureRecord(
        log=more.pop("log", LOG),
        log_index=index,
        body_sha256=f"{index:064x}",
        role="attestation" if role == "attestation" else "signature",
        status=more.pop("status", None) or "valid",
        signer=more.pop(
            "signer", "https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main"
        ),
        issuer="https://token.actions.githubusercontent.com",
        tie=more.pop("tie", "proven"),
        detail=more.pop("detail", None),
    )


def scan(
    *digests: ImageDigestRecord,
    start: timedelta = timedelta(),
    complete: bool = True,
    repository: str = REPO,
) -> ImageScanRecord:
    return ImageScanRecord(
        repository, T0 + start, T0 + start + timedelta(seconds=5), complete, digests
    )


def multiarch(start: timedelta = timedelta()) -> ImageScanRecord:
    """``1.0`` and ``latest`` point at D1, ``2.0`` at an index whose signature (entry 3)
    covers its two platforms; D1's signature is entry 1, its attestation entry 2."""
    return scan(
        ImageDigestRecord(
            D1,
            "signed",
            tags=("1.0", "latest"),
            summary={"signers": ["ci"]},
            signatures=(sig(1), sig(2, "attestation")),
        ),
        ImageDigestRecord(INDEX, "signed", tags=("2.0",), signatures=(sig(3),)),
        ImageDigestRecord(AMD64, "signed", index_digest=INDEX, platform="linux/amd64"),
        ImageDigestRecord(ARM64, "signed", index_digest=INDEX, platform="linux/arm64"),
        start=start,
    )


async def store_entries(store: Store, indexes: range, *, index_all: bool = False) -> None:
    records = tuple(cert_record(LOG, i) for i in indexes)
    rows = tuple(IndexRow(LOG, i, 100 + i, "hashedrekord") for i in indexes) if index_all else ()
    findings = tuple(finding_for(r, kind=FindingKind.EXPECTED_USE) for r in records)
    await store.store_batch(
        Batch(LOG, indexes.stop, records=records, findings=findings, index_rows=rows, at=T0)
    )


def test_a_scan_is_stored_and_read_back_paged(url: str) -> None:
    async def body(store: Store) -> None:
        await store.record_image_scan(multiarch())
        page = await store.image_digests(REPO, limit=3)
        got = [(d.tag, d.digest) for d in page.items]
        # platform rows (no tag) first, then by tag
        assert got == [(None, AMD64), (None, ARM64), ("1.0", D1)]
        assert page.next_cursor is not None
        rest = await store.image_digests(REPO, limit=3, cursor=page.next_cursor)
        assert [(d.tag, d.digest) for d in rest.items] == [("2.0", INDEX), ("latest", D1)]
        assert rest.next_cursor is None
        amd = page.items[0]
        assert (amd.index_digest, amd.platform, amd.status) == (INDEX, "linux/amd64", "signed")
        assert page.items[2].summary == {"signers": ["ci"]}
        assert page.items[2].reference == f"{REPO}:1.0@{D1}"
        assert (await store.image_digests("ghcr.io/other/app")).items == ()
        assert len((await store.image_digests()).items) == 5

    with_store(url, body)


def test_first_seen_is_kept_and_the_rest_follows_the_latest_pass(url: str) -> None:
    async def body(store: Store) -> None:
        first = scan(ImageDigestRecord(D1, "unsigned", tags=("1.0",)))
        await store.record_image_scan(first)
        later = timedelta(hours=2)
        again = scan(
            ImageDigestRecord(D1, "signed", tags=("1.0",), signatures=(sig(1),)), start=later
        )
        await store.record_image_scan(again)
        (d,) = (await store.image_digests(REPO)).items
        assert d.first_seen == T0 + timedelta(seconds=5)
        assert d.last_checked == d.last_seen == T0 + later + timedelta(seconds=5)
        assert d.status == "signed"
        # the link too: first seen kept, status updated
        await store.record_image_scan(
            scan(
                ImageDigestRecord(
                    D1, "invalid", tags=("1.0",), signatures=(sig(1, status="invalid"),)
                ),
                start=later * 2,
            )
        )
        (link,) = await store.image_links_for(LOG, 1)
        assert link.first_seen == T0 + later + timedelta(seconds=5)
        assert link.status == "invalid"

    with_store(url, body)


def test_links_by_entry_and_hostile_text_stored_safely(url: str) -> None:
    hostile = "evil\x00\udcff<script>"

    async def body(store: Store) -> None:
        digest = ImageDigestRecord(
            D1,
            "unexpected",
            tags=("1.0",),
            platform=hostile,
            summary={hostile: [hostile]},
            signatures=(
                sig(7, signer=hostile, detail=hostile, tie="mismatch"),
                sig(7, "attestation"),
                sig(8, log=None, tie="unknown_log"),
            ),
        )
        await store.record_image_scan(scan(digest))
        links = await store.image_links_for(LOG, 7)
        assert [(x.role, x.tie) for x in links] == [
            ("attestation", "proven"),
            ("signature", "mismatch"),
        ]
        assert links[1].signer == links[1].detail == clean_text(hostile)
        assert links[1].to_json()["log_index"] == 7
        assert await store.image_links_for(LOG, 8) == []  # in no configured log
        (d,) = (await store.image_digests(REPO)).items
        assert d.platform == clean_text(hostile)
        assert d.summary == {clean_text(hostile): [clean_text(hostile)]}

    with_store(url, body)


def test_a_scan_is_one_transaction(url: str) -> None:
    async def body(store: Store) -> None:
        # a record the tables cannot hold as meant is refused before anything is written
        bad = scan(
            ImageDigestRecord(D1, "signed", tags=("1.0",)),
            ImageDigestRecord("sha256:short", "signed", tags=("2.0",)),
        )
        with pytest.raises(MalformedInputError):
            await store.record_image_scan(bad)
        refused = [
            scan(ImageDigestRecord(D1, "signed", tags=("x" * 129,))),
            scan(ImageDigestRecord(D1, "signed", tags=("",))),
            scan(ImageDigestRecord(D1, "signed", index_digest="sha256:x")),
            scan(ImageDigestRecord(D1, "fine")),  # type: ignore[arg-type]
            scan(ImageDigestRecord(D1, "signed", signatures=(sig(-1),))),
            scan(ImageDigestRecord(D1, "signed", signatures=(replace(sig(1), role="other"),))),  # type: ignore[arg-type]
            scan(repository="ghcr.io/Acme/app"),
            scan(repository="alpine"),  # docker.io/library/alpine
            replace(scan(), finished_at=T0 - timedelta(seconds=1)),
        ]
        refused.append(
            scan(
                ImageDigestRecord(
                    D1, "signed", signatures=(replace(sig(1), body_sha256="AB" * 32),)
                )
            )
        )
        for record in refused:
            with pytest.raises(MalformedInputError):
                await store.record_image_scan(record)
        assert (await store.image_digests()).items == ()
        assert await store.last_complete_scan(REPO) is None

        # a failure after the digests and links, before the scan row, leaves nothing
        def fail(step: str) -> None:
            if step == "image_signatures":
                raise StorageError(f"injected after {step}")

        store.after_step = fail
        with pytest.raises(StorageError):
            await store.record_image_scan(multiarch())
        store.after_step = None
        assert (await store.image_digests()).items == ()
        assert await store.image_links_for(LOG, 1) == []
        assert await store.last_complete_scan(REPO) is None

    with_store(url, body)


def test_the_last_complete_scan(url: str) -> None:
    async def body(store: Store) -> None:
        assert await store.last_complete_scan(REPO) is None
        await store.record_image_scan(scan(start=timedelta(hours=1)))
        await store.record_image_scan(scan(start=timedelta(hours=3), complete=False))
        await store.record_image_scan(scan(start=timedelta(hours=2)))
        await store.record_image_scan(scan(start=timedelta(hours=9), repository="ghcr.io/x/y"))
        got = await store.last_complete_scan(REPO)
        assert got == T0 + timedelta(hours=2)
        assert got is not None
        assert got.tzinfo is not None
        # passes before the latest complete one are not kept
        for h in range(10, 20):
            await store.record_image_scan(scan(start=timedelta(hours=h), complete=h % 3 != 0))
        assert await store.last_complete_scan(REPO) == T0 + timedelta(hours=19)
        async with store.engine.connect() as conn:
            count = select(func.count()).select_from(IMAGE_SCANS)
            kept = (await conn.execute(count.where(IMAGE_SCANS.c.repository == REPO))).scalar()
            other = (await conn.execute(count.where(IMAGE_SCANS.c.repository != REPO))).scalar()
        assert (kept, other) == (1, 1)

    with_store(url, body)


def test_unlinked_entries_of_a_rule(url: str) -> None:
    async def body(store: Store) -> None:
        await store_entries(store, range(6))
        await store.record_image_scan(multiarch())  # links entries 1, 2, 3
        after = T0 + timedelta(seconds=1)
        assert await store.unlinked_entries("acme-release", after) == [
            (LOG, 0),
            (LOG, 4),
            (LOG, 5),
        ]
        # stored at T0: not before T0
        assert await store.unlinked_entries("acme-release", T0) == []
        assert await store.unlinked_entries("another-rule", after) == []
        assert await store.unlinked_entries("acme-release", after, limit=1) == [(LOG, 0)]
        # an orphan finding already made is not asked for again
        orphan = finding_for(cert_record(LOG, 4), kind=FindingKind.ORPHAN_SIGNATURE)
        await store.store_findings([orphan])
        assert await store.unlinked_entries("acme-release", after) == [(LOG, 0), (LOG, 5)]
        # a link from an invalid signature, or one the log did not prove, hides no orphan:
        # anyone may attach a signature naming any entry
        bad = scan(
            ImageDigestRecord(
                D2,
                "invalid",
                tags=("bad",),
                signatures=(sig(0, status="invalid"), sig(5, tie="unvouched")),
            ),
            repository="ghcr.io/acme/other",
        )
        await store.record_image_scan(bad)
        assert await store.unlinked_entries("acme-release", after) == [(LOG, 0), (LOG, 5)]

    with_store(url, body)


def test_history_by_image(url: str) -> None:
    async def body(store: Store) -> None:
        await store_entries(store, range(6), index_all=True)
        await store.record_image_scan(multiarch())
        other = scan(
            ImageDigestRecord(D2, "signed", tags=("1.0",), signatures=(sig(5),)),
            repository="ghcr.io/acme/other",
        )
        await store.record_image_scan(other)
        cases = {
            REPO: [1, 2, 3],
            f"{REPO}:1.0": [1, 2],
            f"{REPO}:latest": [1, 2],
            f"{REPO}:2.0": [3],
            f"{REPO}@{D1}": [1, 2],
            f"{REPO}@{AMD64}": [3],  # a platform: its index's signature covers it
            f"{REPO}:whatever@{INDEX}": [3],  # the digest is what counts
            f"{REPO}:9.9": [],
            "ghcr.io/acme/other": [5],
            "ghcr.io/acme/nothing": [],
        }
        for image, want in cases.items():
            for all_entries in (False, True):
                q = HistoryQuery(image=image, all_entries=all_entries)
                page = (await history_answer(store, q)).page
                assert [e.index for e in page.items] == want, (image, all_entries)
        # with other filters, and paged
        q = HistoryQuery(image=REPO, index_min=2)
        assert [e.index for e in (await store.history(q)).items] == [2, 3]
        q = HistoryQuery(image=REPO, san="https://github.com/acme/*", limit=2)
        first = await store.history(q)
        assert [e.index for e in first.items] == [1, 2]
        q = HistoryQuery(image=REPO, san="https://github.com/acme/*", cursor=first.next_cursor)
        assert [e.index for e in (await store.history(q)).items] == [3]

        # every item carries its images
        page = await store.history(HistoryQuery(log=LOG))
        images = {e.index: e.images for e in page.items}
        assert images[0] == ()
        assert images[1] == (
            FindingImage(REPO, "1.0", D1),
            FindingImage(REPO, "latest", D1),
        )
        assert images[3] == (FindingImage(REPO, "2.0", INDEX),)
        assert page.items[5].to_json()["images"] == [
            {"repository": "ghcr.io/acme/other", "tag": "1.0", "digest": D2}
        ]
        page = await store.history(HistoryQuery(log=LOG, all_entries=True))
        assert page.items[3].images == (FindingImage(REPO, "2.0", INDEX),)
        entry = await store.entry(LOG, 2)
        assert entry is not None
        assert entry.images == images[1]

    with_store(url, body)


@pytest.mark.parametrize(
    "bad", ["ghcr.io/acme/App", "ghcr.io/acme/app@sha256:12", "ghcr.io/acme/app:bad tag", "::"]
)
def test_a_bad_image_is_a_query_error(bad: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(QueryError) as e:
            await history_answer(store, HistoryQuery(image=bad))
        assert e.value.param == "image"

    with_store(sqlite_url(tmp_path), body)


def test_docker_hub_names_are_normalised(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await store_entries(store, range(2))
        hub = scan(
            ImageDigestRecord(D1, "signed", tags=("3",), signatures=(sig(1),)),
            repository="docker.io/library/alpine",
        )
        await store.record_image_scan(hub)
        for image in (
            "alpine",
            "alpine:3",
            "docker.io/library/alpine",
            "index.docker.io/library/alpine:3",
        ):
            page = (await history_answer(store, HistoryQuery(image=image))).page
            assert [e.index for e in page.items] == [1], image

    with_store(sqlite_url(tmp_path), body)
