"""The trust root: which logs exist, their keys, and the Fulcio CAs, as frozen domain objects.

Built from a Sigstore TrustedRoot (which logs and keys) plus a SigningConfig (which API version
each log speaks, and which Rekor v2 shards are current). Nothing here is hard-coded: the
defaults are the production files that the ``sigstore`` package and this package carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pydantic
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from monitor.core.authority import CertificateAuthority
from monitor.core.errors import MalformedInputError, NoteError, TrustRootError
from monitor.core.protojson import decode_bytes, normalize
from monitor.tlog.checkpoint import v1_tree_id
from monitor.tlog.note import (
    AnyNameVerifier,
    EcdsaNoteVerifier,
    Ed25519NoteVerifier,
    NoteVerifier,
    RsaNoteVerifier,
    spki_der,
)
from monitor.trust import models

PublicKeyType = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_EC_DETAIL_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "PKIX_ECDSA_P256_SHA_256": hashes.SHA256,
    "PKIX_ECDSA_P384_SHA_384": hashes.SHA384,
    "PKIX_ECDSA_P521_SHA_512": hashes.SHA512,
}
_EC_DETAIL_CURVE = {
    "PKIX_ECDSA_P256_SHA_256": "secp256r1",
    "PKIX_ECDSA_P384_SHA_384": "secp384r1",
    "PKIX_ECDSA_P521_SHA_512": "secp521r1",
}


@dataclass(frozen=True)
class TransparencyLog:
    """One Rekor log (a v1 instance or a v2 shard) as the trust root describes it."""

    base_url: str
    key_name: str  # the URL without scheme: the signing key's name in checkpoints
    api_version: int | None  # from the signing config; None when it does not list the log
    log_id: bytes
    checkpoint_key_id: bytes  # the C2SP key ID (Rekor v2), unless the trust root names one
    v1_key_hint: bytes  # Rekor v1's: SHA-256 of the DER SPKI, unless the trust root names one
    key_details: str
    public_key: PublicKeyType = field(repr=False)
    spki: bytes = field(repr=False)
    valid_from: datetime | None
    valid_until: datetime | None
    operator: str

    def note_verifier(self) -> NoteVerifier:
        """The log's key as a C2SP signed-note verifier: bound to the log's name (the URL
        without scheme), with the trust root's checkpoint key ID where it names one."""
        key = self.public_key
        verifier: NoteVerifier
        if isinstance(key, ed25519.Ed25519PublicKey):
            verifier = Ed25519NoteVerifier.create(self.key_name, key)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            verifier = EcdsaNoteVerifier.create(
                self.key_name, key, _EC_DETAIL_HASH.get(self.key_details)
            )
        else:
            verifier = RsaNoteVerifier.create(self.key_name, key, pss="PSS" in self.key_details)
        if verifier.key_id != self.checkpoint_key_id:
            # the trust root named an explicit checkpoint key ID; it takes precedence
            return _KeyIdOverride(verifier, self.checkpoint_key_id)
        return verifier

    def v1_note_verifier(self) -> NoteVerifier:
        """The log's key as Rekor v1 uses it for checkpoints: any key name (Rekor v1 signs
        under its configured hostname, which need not be its URL's and changes with a pod),
        picked by the key hint ``SHA-256(DER SPKI)[:4]`` (or the trust root's explicit
        checkpoint key ID), verified with the log's key."""
        key = self.public_key
        verifier: NoteVerifier
        if isinstance(key, ed25519.Ed25519PublicKey):
            verifier = Ed25519NoteVerifier(self.key_name, self.v1_key_hint, key)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            ecdsa = EcdsaNoteVerifier.create(
                self.key_name, key, _EC_DETAIL_HASH.get(self.key_details)
            )
            verifier = replace(ecdsa, key_id=self.v1_key_hint)
        else:
            verifier = RsaNoteVerifier(
                self.key_name, self.v1_key_hint, key, pss="PSS" in self.key_details
            )
        return AnyNameVerifier(verifier)

    def note_verifiers(self) -> tuple[NoteVerifier, ...]:
        """What a checkpoint of this log is verified with: Rekor v1's key under any name,
        Rekor v2's C2SP key under its own name, either when the API version is unknown."""
        if self.api_version == 1:
            return (self.v1_note_verifier(),)
        if self.api_version == 2:
            return (self.note_verifier(),)
        return (self.note_verifier(), self.v1_note_verifier())

    def origin_matches(self, origin: str) -> bool:
        """Whether a checkpoint origin (of a checkpoint signed by this log's key) is of this
        log's form.

        Rekor v1 origins are ``<hostname> - <tree ID>``, whatever the hostname (the caller
        binds the tree ID to the shard); Rekor v2 origins equal the key name.
        """
        if self.api_version == 2:
            return origin == self.key_name
        v1_ok = v1_tree_id(origin) is not None
        if self.api_version == 1:
            return v1_ok
        return v1_ok or origin == self.key_name

    def valid_at(self, when: datetime) -> bool:
        """Whether the key was valid at ``when``: within [start, end], both ends included (as
        sigstore-conformance holds clients to). A key without a start is never valid: the
        trust root must say since when to trust it, and a missing bound is not "forever"."""
        if self.valid_from is None or when < self.valid_from:
            return False
        return self.valid_until is None or when <= self.valid_until

    def validity_problem(self) -> str | None:
        """Why the trust root's entry for this log cannot be trusted at all, or None."""
        if self.valid_from is None:
            return (
                f"the trusted root gives the key of {self.base_url} no validity start "
                "(publicKey.validFor.start): a key without one is not trusted"
            )
        return None


@dataclass(frozen=True)
class _KeyIdOverride:
    inner: NoteVerifier
    key_id: bytes

    @property
    def name(self) -> str:
        return self.inner.name

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self.inner.verify(message, signature)


@dataclass(frozen=True)
class TrustRoot:
    logs: tuple[TransparencyLog, ...]
    certificate_authorities: tuple[CertificateAuthority, ...]
    source: str

    def log_by_id(self, log_id: bytes) -> TransparencyLog | None:
        for log in self.logs:
            if log.log_id == log_id:
                return log
        return None

    def log_by_url(self, url: str) -> TransparencyLog | None:
        want = _normalise_url(url)
        for log in self.logs:
            if _normalise_url(log.base_url) == want:
                return log
        return None

    def v2_shards(self, at: datetime | None = None) -> tuple[TransparencyLog, ...]:
        """Rekor v2 shards the signing config lists (and, given ``at``, whose key is valid)."""
        return tuple(
            log for log in self.logs if log.api_version == 2 and (at is None or log.valid_at(at))
        )

    def note_verifiers(self) -> list[NoteVerifier]:
        return [v for log in self.logs for v in log.note_verifiers()]


def _normalise_url(url: str) -> str:
    return url.rstrip("/").lower()


def _key_name(base_url: str) -> str:
    parts = urlsplit(base_url)
    return (parts.netloc + parts.path).rstrip("/")


def _load_public_key(raw: bytes, where: str) -> PublicKeyType:
    try:
        key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError) as e:
        raise TrustRootError(f"{where}: public key is not a DER SubjectPublicKeyInfo") from e
    except UnsupportedAlgorithm as e:
        raise TrustRootError(f"{where}: unsupported public key algorithm ({e})") from e
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise TrustRootError(f"{where}: unsupported public key type {type(key).__name__}")
    return key


def _default_checkpoint_key_id(key_name: str, key: PublicKeyType) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519NoteVerifier.create(key_name, key).key_id
    if isinstance(key, ec.EllipticCurvePublicKey):
        return hashlib.sha256(spki_der(key)).digest()[:4]
    return RsaNoteVerifier.create(key_name, key).key_id


def _decode(text: str, where: str) -> bytes:
    try:
        return decode_bytes(text)
    except ValueError as e:
        raise TrustRootError(f"{where}: not valid base64") from e


def _build_log(
    index: int, inst: models.TransparencyLogInstance, api_versions: dict[str, int], source: str
) -> TransparencyLog:
    where = f"{source}: tlogs[{index}] ({inst.base_url})"
    raw = _decode(inst.public_key.raw_bytes, f"{where}.publicKey.rawBytes")
    key = _load_public_key(raw, where)
    details = inst.public_key.key_details
    curve = _EC_DETAIL_CURVE.get(details)
    if curve is not None and (
        not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve
    ):
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        raise TrustRootError(f"{where}: public key is {kind} but keyDetails says {details}")
    key_name = _key_name(inst.base_url)
    if urlsplit(inst.base_url).scheme not in ("https", "http") or not key_name:
        raise TrustRootError(f"{where}: baseUrl must be an http(s) URL with a host")
    log_id = _decode(inst.log_id.key_id, f"{where}.logId.keyId")
    if inst.checkpoint_key_id is not None:
        ckid = _decode(inst.checkpoint_key_id.key_id, f"{where}.checkpointKeyId.keyId")[:4]
        v1_hint = ckid
    else:
        ckid = _default_checkpoint_key_id(key_name, key)
        v1_hint = hashlib.sha256(spki_der(key)).digest()[:4]
    valid = inst.public_key.valid_for
    log = TransparencyLog(
        base_url=inst.base_url.rstrip("/"),
        key_name=key_name,
        api_version=api_versions.get(_normalise_url(inst.base_url)),
        log_id=log_id,
        checkpoint_key_id=ckid,
        v1_key_hint=v1_hint,
        key_details=inst.public_key.key_details,
        public_key=key,
        spki=spki_der(key),
        valid_from=valid.start if valid else None,
        valid_until=valid.end if valid else None,
        operator=inst.operator,
    )
    try:
        log.note_verifiers()  # fail at load, not at the first checkpoint
    except NoteError as e:
        raise TrustRootError(f"{where}: {e.message}") from e
    return log


def _build_ca(index: int, ca: models.CertificateAuthority, source: str) -> CertificateAuthority:
    where = f"{source}: certificateAuthorities[{index}]"
    certs = []
    for j, c in enumerate(ca.cert_chain.certificates):
        der = _decode(c.raw_bytes, f"{where}.certChain.certificates[{j}]")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            raise TrustRootError(f"{where}.certChain.certificates[{j}]: not a certificate") from e
    valid = ca.valid_for
    return CertificateAuthority(
        uri=ca.uri,
        chain=tuple(certs),
        valid_from=valid.start if valid else None,
        valid_until=valid.end if valid else None,
    )


_M = TypeVar("_M", bound=pydantic.BaseModel)


def _parse(model: type[_M], data: bytes, source: str) -> _M:
    """``data`` as the protobuf JSON of ``model``'s message (see ``monitor.core.protojson``)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise TrustRootError(f"{source}: not a valid {model.__name__}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TrustRootError(f"{source}: not a valid {model.__name__}: not a JSON object")
    try:
        return model.model_validate(normalize(doc))
    except MalformedInputError as e:
        raise TrustRootError(f"{source}: not a valid {model.__name__}: {e}") from None
    except pydantic.ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in e.errors()[:10]
        )
        raise TrustRootError(f"{source}: not a valid {model.__name__}: {problems}") from e


def build_trust_root(
    trusted_root: bytes,
    signing_config: bytes | None,
    *,
    source: str = "trusted root",
    signing_config_source: str = "signing config",
) -> TrustRoot:
    """Combine a TrustedRoot JSON and (optionally) a SigningConfig JSON into a ``TrustRoot``."""
    root = _parse(models.TrustedRoot, trusted_root, source)
    if "trustedroot" not in root.media_type:
        raise TrustRootError(f"{source}: mediaType {root.media_type!r} is not a trusted root")
    api_versions: dict[str, int] = {}
    if signing_config is not None:
        sc = _parse(models.SigningConfig, signing_config, signing_config_source)
        if "signingconfig" not in sc.media_type:
            raise TrustRootError(
                f"{signing_config_source}: mediaType {sc.media_type!r} is not a signing config"
            )
        for svc in sc.rekor_tlog_urls:
            api_versions[_normalise_url(svc.url)] = svc.major_api_version
    logs = tuple(_build_log(i, inst, api_versions, source) for i, inst in enumerate(root.tlogs))
    cas = tuple(_build_ca(i, ca, source) for i, ca in enumerate(root.certificate_authorities))
    return TrustRoot(logs=logs, certificate_authorities=cas, source=source)


DEFAULT = "default"
_SIGSTORE_PROD_STORE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"


def default_trusted_root_bytes() -> bytes:
    """The production TrustedRoot that the ``sigstore`` package ships."""
    store = resources.files("sigstore") / "_store" / _SIGSTORE_PROD_STORE
    return (store / "trusted_root.json").read_bytes()


def default_signing_config_bytes() -> bytes:
    """The production SigningConfig that lists the Rekor v2 shards (shipped with this package:
    the one in the ``sigstore`` package predates Rekor v2)."""
    data = resources.files("monitor.trust") / "data"
    return (data / "signing_config_rekor_v2.v0.2.json").read_bytes()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TrustRootError(f"cannot read {what} {path}: {e.strerror or e}") from e


def read_trusted_root(trusted_root: str = DEFAULT) -> bytes:
    """The TrustedRoot JSON ``load_trust_root`` reads: ``default`` (production) or a path
    (sigstore-python takes it as it is)."""
    if trusted_root == DEFAULT:
        return default_trusted_root_bytes()
    return _read(trusted_root, "trusted root")


def load_trust_root(trusted_root: str = DEFAULT, signing_config: str | None = DEFAULT) -> TrustRoot:
    """Load the trust root offline: ``default`` (production) or a path for each file.

    ``signing_config=None`` means none: API versions are then unknown.
    """
    if trusted_root == DEFAULT:
        root_bytes, root_src = default_trusted_root_bytes(), "default trusted root"
    else:
        root_bytes, root_src = _read(trusted_root, "trusted root"), trusted_root
    sc_bytes: bytes | None
    if signing_config is None:
        sc_bytes, sc_src = None, "none"
    elif signing_config == DEFAULT:
        sc_bytes, sc_src = default_signing_config_bytes(), "default signing config"
    else:
        sc_bytes, sc_src = _read(signing_config, "signing config"), signing_config
    return build_trust_root(root_bytes, sc_bytes, source=root_src, signing_config_source=sc_src)


__all__: Sequence[str] = (
    "CertificateAuthority",
    "TransparencyLog",
    "TrustRoot",
    "build_trust_root",
    "load_trust_root",
    "read_trusted_root",
)
