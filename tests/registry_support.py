"""A real container registry for the tests, and pushes over its API (no container engine).

``docker-registry`` is Debian's package of the CNCF distribution registry (2.8). Each fixture
starts one on loopback with a temporary configuration and filesystem storage, and stops it.
Where the program is missing the tests are skipped locally, but FAIL when ``CI`` is set: CI
must run them.

With ``token`` auth the registry trusts JWTs signed by an EC key whose self-signed certificate
is its ``rootcertbundle``. Distribution 2.8 finds a token's signing key through the JWT header:
``x5c`` (a chain it verifies against that bundle), a ``jwk``, or a ``kid`` (a libtrust key id
of a key in the bundle); ``TokenIssuer`` sends ``x5c`` with the certificate itself.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "tlog-monitor-tests"
ISSUER = "tlog-monitor-test-issuer"


def require_registry() -> str:
    """The registry program; skips without it (fails under CI)."""
    path = shutil.which("docker-registry")
    if path is not None:
        return path
    message = "docker-registry is not installed (the Debian package docker-registry has it)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the registry tests", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TokenIssuer:
    """An EC key and its self-signed certificate: the registry's root for tokens."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def mint(self, access: list[dict[str, Any]], lifetime: int = 300, subject: str = "") -> str:
        """A token granting ``access`` (``[{"type", "name", "actions"}]``)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": base64.urlsafe_b64encode(os.urandom(12)).decode(),
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        headers = {"typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)

    def mint_for_scope(self, scope: str, lifetime: int = 300, subject: str = "") -> str:
        """A token for a ``repository:<name>:<actions>`` scope string, as the realm grants."""
        access = []
        for one in scope.split(" "):
            kind, _, rest = one.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return self.mint(access, lifetime, subject)


@dataclass
class RunningRegistry:
    host: str  # 127.0.0.1:<port>, as a reference names it
    url: str
    root: Path
    issuer: TokenIssuer | None = None
    realm_port: int | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.realm_port}/token"

    def push_token(self, name: str) -> str | None:
        """A bearer token that may push to and pull from ``name`` (None without token auth)."""
        if self.issuer is None:
            return None
        return self.issuer.mint_for_scope(f"repository:{name}:pull,push", subject="pusher")


@contextlib.contextmanager
def running_registry(workdir: Path, *, token_auth: bool = False) -> Iterator[RunningRegistry]:
    """A distribution registry on loopback (stopped at the end); its output goes to
    ``workdir/registry.log`` and is shown if it does not come up."""
    binary = require_registry()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": base64.b64encode(os.urandom(16)).decode()},
    }
    issuer = None
    realm_port = None
    if token_auth:
        issuer = TokenIssuer()
        realm_port = free_port()
        bundle = workdir / "token-root.pem"
        bundle.write_bytes(issuer.pem())
        config["auth"] = {
            "token": {
                "realm": f"http://127.0.0.1:{realm_port}/token",
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        }
    config_path = workdir / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _until_ready(url, proc, log_path)
        yield RunningRegistry(f"127.0.0.1:{port}", url, workdir, issuer, realm_port)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _until_ready(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"registry exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=2):
                return
        except urllib.error.HTTPError as e:
            if e.code == 401:  # token auth: up, and asking for a token
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"registry not ready in {timeout}s:\n{log_path.read_text()}")
        time.sleep(0.1)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


# ----------------------------------------------------------------------------- pushing

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


@dataclass(frozen=True)
class Pushed:
    """What a push made: its digest, its bytes and its descriptor (as a parent names it)."""

    digest: str
    raw: bytes
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw), **extra}


@dataclass(frozen=True)
class Layer:
    """A layer to push: its media type, its blob, the annotations of its descriptor."""

    media_type: str
    payload: bytes
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class LegacySignature:
    """One layer of a cosign ``.sig`` manifest: the simple-signing payload, and the
    signature, certificate and bundle annotations cosign writes beside it."""

    payload: bytes
    signature: str
    certificate: str | None = None
    bundle: str | None = None


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """The payload cosign signs for an image digest."""
    return canonical(
        {
            "critical": {
                "identity": {"docker-reference": repository},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


class Pusher:
    """Pushes blobs, manifests, indexes and tags to one repository over the registry API."""

    def __init__(self, session: Any, registry: RunningRegistry, name: str) -> None:
        self.session = session
        self.registry = registry
        self.name = name
        token = registry.push_token(name)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _url(self, path: str) -> str:
        return f"{self.registry.url}/v2/{self.name}/{path}"

    async def blob(self, data: bytes, media_type: str = OCI_LAYER) -> Pushed:
        """A blob, uploaded in one PUT after the POST that opens the upload."""
        digest = sha256(data)
        async with self.session.post(self._url("blobs/uploads/"), headers=self.headers) as r:
            assert r.status == 202, await r.text()
            location = r.headers["Location"]
        if location.startswith("/"):
            location = self.registry.url + location
        sep = "&" if "?" in location else "?"
        headers = {**self.headers, "Content-Type": "application/octet-stream"}
        async with self.session.put(
            f"{location}{sep}digest={digest}", data=data, headers=headers
        ) as r:
            assert r.status == 201, await r.text()
        return Pushed(digest, data, media_type)

    async def manifest(
        self, reference: str | None, doc: Mapping[str, Any], media_type: str
    ) -> Pushed:
        """A manifest or index, under ``reference`` (a tag) or by its own digest."""
        raw = canonical(doc)
        return await self.raw_manifest(reference, raw, media_type)

    async def raw_manifest(self, reference: str | None, raw: bytes, media_type: str) -> Pushed:
        digest = sha256(raw)
        headers = {**self.headers, "Content-Type": media_type}
        async with self.session.put(
            self._url(f"manifests/{reference or digest}"), data=raw, headers=headers
        ) as r:
            assert r.status == 201, await r.text()
            assert r.headers["Docker-Content-Digest"] == digest
        return Pushed(digest, raw, media_type)

    async def image(self, tag: str | None, *, arch: str = "amd64", size: int = 512) -> Pushed:
        """A random single-platform image (one layer, a config naming the platform)."""
        layer = await self.blob(os.urandom(size))
        config = await self.blob(
            canonical(
                {
                    "architecture": arch,
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                }
            ),
            OCI_CONFIG,
        )
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }
        return await self.manifest(tag, doc, OCI_MANIFEST)

    async def multi_arch(
        self, tag: str, arches: tuple[str, ...] = ("amd64", "arm64")
    ) -> tuple[Pushed, list[Pushed]]:
        """An image index of one random image per platform, and those images."""
        images = [await self.image(None, arch=a) for a in arches]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                i.descriptor(platform={"os": "linux", "architecture": a})
                for i, a in zip(images, arches, strict=True)
            ],
        }
        return await self.manifest(tag, doc, OCI_INDEX), images

    async def _empty_config(self) -> Pushed:
        return await self.blob(b"{}", OCI_EMPTY)

    async def legacy_sig(self, subject: str, signatures: list[LegacySignature]) -> Pushed:
        """cosign's ``sha256-<hex>.sig``: one simple-signing layer per signature."""
        layers = []
        for s in signatures:
            annotations = {"dev.cosignproject.cosign/signature": s.signature}
            if s.certificate is not None:
                annotations["dev.sigstore.cosign/certificate"] = s.certificate
                annotations["dev.sigstore.cosign/chain"] = ""
            if s.bundle is not None:
                annotations["dev.sigstore.cosign/bundle"] = s.bundle
            layers.append(Layer(SIMPLESIGNING, s.payload, annotations))
        return await self.legacy(subject, ".sig", layers)

    async def legacy_att(self, subject: str, envelopes: list[tuple[bytes, str]]) -> Pushed:
        """cosign's ``sha256-<hex>.att``: one DSSE envelope layer per (envelope, predicate type)."""
        layers = [Layer(DSSE, e, {"predicateType": p}) for e, p in envelopes]
        return await self.legacy(subject, ".att", layers)

    async def legacy(self, subject: str, suffix: str, layers: Sequence[Layer]) -> Pushed:
        """A legacy manifest (``suffix`` ``.sig`` or ``.att``) of ``subject`` holding
        ``layers``: each blob pushed, its descriptor carrying the layer's annotations. A
        simulator's ``ImageArtifact`` is ``Layer(a.media_type, a.payload, a.annotations)``."""
        descriptors = []
        for layer in layers:
            blob = await self.blob(layer.payload, layer.media_type)
            descriptors.append(blob.descriptor(annotations=dict(layer.annotations)))
        rootfs = {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}
        config = await self.blob(
            canonical({"architecture": "", "os": "", "rootfs": rootfs}), OCI_CONFIG
        )
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": descriptors,
        }
        return await self.manifest(subject.replace(":", "-") + suffix, doc, OCI_MANIFEST)

    async def bundle_referrer(
        self,
        subject: Pushed,
        bundle: bytes,
        *,
        predicate_type: str = "https://sigstore.dev/cosign/sign/v1",
        fallback: bool = True,
    ) -> Pushed:
        """A Sigstore bundle as cosign 3 attaches it: a manifest of artifact type
        ``BUNDLE`` whose ``subject`` is the image, pushed by digest; with ``fallback``, added to
        the ``sha256-<hex>`` index as cosign does where the registry has no referrers API."""
        layer = await self.blob(bundle, BUNDLE)
        config = await self._empty_config()
        annotations = {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
        }
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
            "annotations": annotations,
        }
        pushed = await self.manifest(None, doc, OCI_MANIFEST)
        if fallback:
            await self.add_to_fallback(
                subject.digest, pushed.descriptor(artifactType=BUNDLE, annotations=annotations)
            )
        return pushed

    async def add_to_fallback(self, subject: str, descriptor: dict[str, Any]) -> Pushed:
        """Adds ``descriptor`` to the referrers fallback index ``sha256-<hex>`` of ``subject``."""
        tag = subject.replace(":", "-")
        manifests: list[dict[str, Any]] = []
        headers = {**self.headers, "Accept": OCI_INDEX}
        async with self.session.get(self._url(f"manifests/{tag}"), headers=headers) as r:
            if r.status == 200:
                manifests = json.loads(await r.read())["manifests"]
            else:
                assert r.status == 404, await r.text()
        manifests.append(descriptor)
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return await self.manifest(tag, doc, OCI_INDEX)


def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry without auth on loopback, shared by a test module's tests:
    ``registry = pytest.fixture(scope="module")(plain_registry)``."""
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg
