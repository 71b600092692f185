"""Checking one digest: what the registry holds beside it (referrers, through the API or the
fallback tag; cosign's legacy ``.sig`` and ``.att``), each layer fetched within the
registry's size caps, verified, and its log entry tied to the monitor's log."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from monitor.core.errors import MalformedInputError
from monitor.core.imageref import Repository
from monitor.images.reports import SignatureReport
from monitor.images.ties import LogTies
from monitor.imagesig import (
    ArtifactForm,
    ImageArtifact,
    Status,
    Verdict,
    artifact_from_layer,
    form_for,
)
from monitor.imagesig.artifacts import MAX_ARTIFACT_BYTES, MEDIA_BUNDLE_V03
from monitor.registry.client import RegistryClient
from monitor.registry.media import Descriptor, Manifest

if TYPE_CHECKING:
    from monitor.imagesig.verify import ImageVerifier  # sigstore: loaded when one is built

# artifacts read per digest and source (referrers, .sig, .att); cosign writes a few
MAX_ARTIFACTS = 64


class ImageChecker:
    """Verifies what is attached to a digest and ties each verdict's log entry: a legacy
    form left ``unproven`` for want of an inclusion proof is verified again with the one
    its tie proved."""

    def __init__(self, verifier: ImageVerifier, ties: LogTies) -> None:
        self.verifier = verifier
        self.ties = ties

    async def check(
        self, client: RegistryClient, repo: Repository, digest: str
    ) -> tuple[SignatureReport, ...]:
        """Every signature and attestation attached to ``digest``, verified and tied.
        Raises ``RegistryError``/``TransientLogError`` when the registry cannot be read."""
        reports = []
        # one artifact held at a time: each is verified, and let go, before the next is
        # fetched (a registry may attach hundreds, each of megabytes)
        async for item in self.artifacts(client, repo, digest):
            if isinstance(item, Verdict):
                reports.append(SignatureReport(item, None))
            else:
                reports.append(await self.verify(item, digest))
        return tuple(reports)

    async def verify(self, artifact: ImageArtifact, digest: str) -> SignatureReport:
        """One artifact's verdict for ``digest``, its entry tied."""
        verdict = await asyncio.to_thread(self.verifier.verify, artifact, digest)
        if verdict.entry is None:
            return SignatureReport(verdict, None)
        entry = verdict.entry
        tied = await self.ties.tie(entry)
        if verdict.status is Status.UNPROVEN and tied.proof is not None:
            verdict = await asyncio.to_thread(self.verifier.verify, artifact, digest, tied.proof)
        tie = tied.tie
        if tie.status == "mismatch" and not verdict.valid and not self.ties.promised(entry):
            # only what the log signed can contradict the log: a registry's bare claim of
            # an entry is no tlog_mismatch (anyone who may push could raise one at will)
            tie = dataclasses.replace(
                tie,
                status="unvouched",
                detail="the log never promised this entry (no valid signed promise or proof): "
                + tie.detail,
            )
        return SignatureReport(verdict, tie)

    async def artifacts(
        self, client: RegistryClient, repo: Repository, digest: str
    ) -> AsyncIterator[ImageArtifact | Verdict]:
        """The artifacts attached to ``digest``, one at a time; a layer of a cosign form that
        cannot be read is an invalid verdict in its place, a layer of no cosign form is left
        out."""
        attached = await client.attachments(repo, digest)
        count = 0
        referrers = [
            d for d in attached.referrers.descriptors if d.artifact_type in (None, MEDIA_BUNDLE_V03)
        ]  # not an SBOM or another tool's artifact
        # bounded before anything is fetched, per source (referrers, .sig, .att): past the
        # bound, a registry's extra artifacts are not read (a hostile one can hide a
        # signature, never forge one)
        for ref in referrers[:MAX_ARTIFACTS]:
            room = MAX_ARTIFACTS - count
            if room <= 0:
                break
            source = f"referrer {ref.digest}"
            manifest = await client.manifest(repo, ref.digest)
            if manifest is None:
                missing = "the referrer's manifest is missing"
                count += 1
                yield _unreadable(ArtifactForm.BUNDLE, source, digest, missing)
                continue
            async for item in self._layers(client, repo, manifest, source, digest, room=room):
                count += 1
                yield item
        for manifest, suffix in ((attached.signatures, ".sig"), (attached.attestations, ".att")):
            if manifest is not None:
                source = digest.replace(":", "-", 1) + suffix
                async for item in self._layers(
                    client, repo, manifest, source, digest, room=MAX_ARTIFACTS
                ):
                    yield item

    async def _layers(
        self,
        client: RegistryClient,
        repo: Repository,
        manifest: Manifest,
        source: str,
        digest: str,
        *,
        room: int,
    ) -> AsyncIterator[ImageArtifact | Verdict]:
        layers = [(d, form) for d in manifest.layers if (form := form_for(d.media_type))]
        for layer, form in layers[:room]:
            yield await self._layer(client, repo, layer, form=form, source=source, digest=digest)

    async def _layer(
        self,
        client: RegistryClient,
        repo: Repository,
        layer: Descriptor,
        *,
        form: ArtifactForm,
        source: str,
        digest: str,
    ) -> ImageArtifact | Verdict:
        if layer.size > MAX_ARTIFACT_BYTES:
            reason = f"a layer of {layer.size} bytes: larger than {MAX_ARTIFACT_BYTES}"
            return _unreadable(form, source, digest, reason)
        blob = await client.blob(repo, layer, MAX_ARTIFACT_BYTES)
        try:
            return artifact_from_layer(layer.as_json(), blob, source)
        except MalformedInputError as e:
            return _unreadable(form, source, digest, f"malformed: {e}")


def _unreadable(form: ArtifactForm, source: str, digest: str, reason: str) -> Verdict:
    return Verdict(
        form=form, source=source, image_digest=digest, status=Status.INVALID, reason=reason
    )
