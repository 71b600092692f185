"""Checking an image whose signatures are OCI 1.1 referrers served by the referrers API
(distribution 2.8 lacks it: the small OCI endpoint of the tests serves it), other referrers
(an SBOM) left out, a referrer that is no bundle invalid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml

from monitor.config.load import parse_settings
from monitor.core.imageref import ImageReference, parse_repository
from monitor.images import ImageChecker, LogTies, check_reference, status_of
from monitor.imagesig import ArtifactForm, Expectation, ImageVerifier, Status
from monitor.imagesig.artifacts import MEDIA_BUNDLE_V03
from monitor.registry.client import RegistryClient
from monitor.rules.spec import Selector
from monitor.sim.ca import SimCA
from monitor.sim.images import ImageSigner
from tests.images_support import EXPECT, OURS, SEED, config_doc
from tests.oci_referrers import OCI_MANIFEST, OciEndpoint, serving
from tests.simlog import FAST, harness, run

SPDX = "application/spdx+json"


def referrer(endpoint: OciEndpoint, subject: dict[str, Any], kind: str, payload: bytes) -> str:
    config = endpoint.blob(b"{}")
    layer = {**endpoint.blob(payload), "mediaType": kind}
    digest, _ = endpoint.put(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": config,
            "layers": [layer],
            "subject": subject,
        }
    )
    return digest


def test_bundle_through_the_referrers_api(tmp_path: Path) -> None:
    async def go() -> None:
        endpoint = OciEndpoint(page_size=1)  # one referrer a page: pages followed
        config = endpoint.blob(b"{}")
        image, raw = endpoint.put(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}, "v1"
        )
        subject = {"mediaType": OCI_MANIFEST, "digest": image, "size": len(raw)}
        async with harness(tmp_path, entries=40) as h, serving(endpoint):
            repo = parse_repository(f"127.0.0.1:{endpoint.port}/acme/app")
            signer = ImageSigner.of(h.sim.state, SimCA.create(SEED))
            made = signer.bundle(image, OURS, str(repo))
            good = referrer(endpoint, subject, MEDIA_BUNDLE_V03, made.artifact.payload)
            referrer(endpoint, subject, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
            junk = referrer(endpoint, subject, MEDIA_BUNDLE_V03, b"not a bundle")
            settings = parse_settings(yaml.safe_dump(config_doc(h, tmp_path, [])))
            async with aiohttp.ClientSession() as session:
                ties = LogTies(h.trust, settings.logs, session, metrics=h.metrics)
                root = (tmp_path / "trusted_root.json").read_bytes()
                checker = ImageChecker(ImageVerifier(root), ties)
                client = RegistryClient(
                    repo, session, metrics=h.metrics, http_policy=FAST, insecure_http=True
                )
                ref = ImageReference(repo, tag="v1")
                expectation = Expectation(Selector.parse(EXPECT))
                (report,) = await check_reference(ref, client, checker, expectation)
        assert report.tags == ("v1",)
        by_source = {s.verdict.source: s for s in report.signatures}
        assert set(by_source) == {f"referrer {good}", f"referrer {junk}"}  # no SBOM
        ok = by_source[f"referrer {good}"]
        assert ok.verdict.status is Status.VALID, ok.verdict.reason
        assert ok.tie is not None
        assert ok.tie.status == "proven"
        bad = by_source[f"referrer {junk}"].verdict
        assert (bad.form, bad.status) == (ArtifactForm.BUNDLE, Status.INVALID)
        assert bad.reason.startswith("not a bundle sigstore can read")
        assert status_of(report) == "signed"

    run(go)
