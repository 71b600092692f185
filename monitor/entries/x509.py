"""X.509 certificates as signers: Fulcio identities, extensions, keys, and the chain check.

``parse_certificate`` turns DER into a ``CertificateSigner`` and raises only
``MalformedInputError``; ``chain_reason`` / ``check_chain`` (in ``x509_chain``) say whether a
Fulcio CA of the trust root issued it, and never raise.

The work is split by job: ``x509_fields`` names and decodes the fields (the Fulcio extensions,
SAN names, the key) and holds the general path through ``cryptography``'s objects;
``x509_direct`` reads the extension list straight from the DER, which is most of the speed;
this module loads the certificate (PEM or DER), runs one path or the other, and turns what
``cryptography`` warns about into ``MalformedInputError``.
"""

from __future__ import annotations

import binascii
import sys
import warnings
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from monitor.core.errors import MalformedInputError
from monitor.entries import x509_direct, x509_fields, x509_layout
from monitor.entries.record import CertificateSigner
from monitor.entries.x509_chain import chain_reason, check_chain
from monitor.entries.x509_direct import (
    name_text,
    remembered_name,
    san_names,
    settle_extensions,
    walk_extensions,
)
from monitor.entries.x509_fields import (
    CRYPTO_ERRORS,
    FULCIO_EXTENSION_OIDS,
    FULCIO_EXTENSIONS,
    ISSUER_OID,
    ISSUER_V1_OID,
    USERNAME_SAN_OID,
    build_general,
    crypto_step,
    key_signer,
    make_signer,
    plain_ec_signer,
)
from monitor.entries.x509_layout import read_layout
from monitor.entries.x509_values import Unexpected


def _quiet(cert_der: bytes) -> CertificateSigner | None:
    """The signer of a certificate read without a call that may let cryptography warn (which
    would have to be caught, at a cost on every certificate): None unless the serial is
    positive, every extension was read directly or remembered, both names were remembered and
    the key is a plain P-256 / P-384 one. None too for anything unexpected or malformed:
    ``_parse`` then reads the certificate, and says what is wrong."""
    try:
        layout = read_layout(cert_der)  # safe on any bytes; checked by the load below
        if not layout.positive_serial:
            return None
        cert = x509.load_der_x509_certificate(cert_der)  # warns only of a non-positive serial
        walk = walk_extensions(cert_der, *layout.extensions)  # on DER cryptography loaded
        if walk.pending or walk.failed or walk.duplicate:
            return None
        issuer_dn, subject_dn = remembered_name(layout.issuer), remembered_name(layout.subject)
        key = plain_ec_signer(layout.spki)
        if issuer_dn is None or subject_dn is None or key is None:
            return None
        return make_signer(
            cert,
            cert_der,
            sans=walk.sans or (),
            issuer=walk.issuer(),
            extensions=tuple(walk.extensions),  # type: ignore[arg-type]  # none pending: no None
            names=(issuer_dn, subject_dn),
            key=key,
        )
    except (Unexpected, IndexError):
        return None
    except CRYPTO_ERRORS:
        return None


def _build(
    cert_der: bytes, load_step: str, caught: list[warnings.WarningMessage]
) -> CertificateSigner:
    """The signer; ``caught`` records the warnings meanwhile: what cryptography computed while
    warning is not remembered, so that it warns again for the next certificate alike."""
    step = load_step
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        try:
            layout = read_layout(cert_der)
            walk = walk_extensions(cert_der, *layout.extensions)
        except (Unexpected, IndexError):
            return build_general(cert, cert_der)
        step = "extensions cannot be parsed"
        settled = settle_extensions(walk, caught)
        step = "subject alternative name cannot be parsed"
        sans = san_names(walk, settled, caught)
        step = "public key cannot be read"
        key = key_signer(cert, layout.spki)
        step = "issuer or subject name cannot be parsed"
        issuer_dn = name_text(cert, layout.issuer, caught, subject=False)
        subject_dn = name_text(cert, layout.subject, caught, subject=True)
        step = "fields cannot be read"
        names = (issuer_dn, subject_dn)
        return make_signer(
            cert,
            cert_der,
            sans=sans,
            issuer=walk.issuer(),
            extensions=settled.extensions,
            names=names,
            key=key,
        )
    except x509.DuplicateExtension as e:
        raise MalformedInputError(f"certificate: duplicate extension {e.oid.dotted_string}") from e
    except CRYPTO_ERRORS as e:
        raise MalformedInputError(f"certificate: {step}: {e}") from e


def _parse(cert_der: bytes, load_step: str) -> CertificateSigner:
    signer = _quiet(cert_der)
    if signer is not None:
        return signer
    # cryptography only warns about some RFC 5280 violations (a non-positive serial, a wrong
    # length country name) and may reject them in a future release: they are malformed for us
    # now, and must not leak out as warnings. The filter is process-wide, so warnings of any
    # other kind caught meanwhile (from other threads) are passed on unchanged.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signer = _build(cert_der, load_step, caught)
    if caught:
        ours = [w for w in caught if _from_cryptography(w)]
        for w in caught:
            if w not in ours:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # but not cryptography 51's about DSA keys: a certificate may hold one (read as ever)
        ours = [w for w in ours if not str(w.message).startswith(_DSA_DEPRECATION)]
        if ours:
            raise MalformedInputError(f"certificate: {ours[0].message}")
    return signer


_DSA_DEPRECATION = "DSA is deprecated"
# the modules whose lines ask cryptography for names and keys
_OUR_FILES = frozenset(
    m.__file__ for m in (x509_direct, x509_fields, x509_layout, sys.modules[__name__])
)


def _from_cryptography(w: warnings.WarningMessage) -> bool:
    """Deprecations, and complaints such as a wrong-length country name in a DN (which
    cryptography attributes to the line of ours that asked for the name)."""
    parts = w.filename.replace("\\", "/").split("/")
    return (
        issubclass(w.category, CryptographyDeprecationWarning)
        or "cryptography" in parts
        or w.filename in _OUR_FILES
    )


def parse_certificate(der: bytes) -> CertificateSigner:
    """Parse a DER certificate. Raises only MalformedInputError."""
    return _parse(der, "not a DER X.509 certificate")


# the block labels cryptography loads as certificates
_PEM_CERT_MARKERS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN X509 CERTIFICATE-----")
_PEM_BEGIN, _PEM_END = _PEM_CERT_MARKERS[0], b"-----END CERTIFICATE-----"
# the last base64 digit before "==" / "=" of a canonical encoding: its unused low bits are zero
_BASE64_BEFORE_PADDING = {2: b"AQgw", 1: b"AEIMQUYcgkosw048"}


def _looks_like_pem(data: bytes) -> bool:
    # a DER certificate starts with a SEQUENCE tag; PEM may carry text before its first block
    return not data.startswith(b"\x30") and b"-----BEGIN " in data


def _canonical_base64_end(text: bytes) -> bool:
    """Whether the digit before any "=" padding has its unused low bits zero."""
    tail = text[-3:]  # more than two "=" is not canonical either way
    padding = len(tail) - len(tail.rstrip(b"="))
    if not padding:
        return True
    digit = text[len(text) - padding - 1 : len(text) - padding]
    return len(digit) == 1 and digit in _BASE64_BEFORE_PADDING.get(padding, b"")


def _plain_pem_der(data: bytes) -> bytes | None:
    """The DER in PEM written the usual way: text without a dash, one CERTIFICATE block of
    canonical base64 in lines without blank ones, then only whitespace. None for anything else,
    which cryptography then reads; what this accepts, cryptography reads to the same bytes."""
    begin = data.find(_PEM_BEGIN)
    end = data.find(_PEM_END, begin) if begin >= 0 and data.find(b"-") == begin else -1
    if end < 0 or data[end + len(_PEM_END) :].strip(b" \t\r\n"):
        return None
    body = data[begin + len(_PEM_BEGIN) : end].lstrip(b" \t\r\n")
    # a blank line ends PEM headers; strict base64 has no dash, space or stray character
    if b"\n\n" in body or (b"\r" in body and b"\n\r\n" in body):  # most PEM has no "\r"
        return None
    text = body.replace(b"\n", b"").replace(b"\r", b"")
    if len(text) % 4:
        return None
    try:
        decoded = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return decoded if _canonical_base64_end(text) else None


def parse_certificate_pem_or_der(data: bytes) -> CertificateSigner:
    """Parse one certificate given as PEM (exactly one CERTIFICATE block) or DER."""
    if not _looks_like_pem(data):
        return parse_certificate(data)
    plain = _plain_pem_der(data)
    if plain is not None:
        return _parse(plain, "not a PEM certificate")
    if not any(marker in data for marker in _PEM_CERT_MARKERS):
        raise MalformedInputError("certificate: PEM holds no CERTIFICATE block")
    with warnings.catch_warnings(record=True), crypto_step("not a PEM certificate"):
        warnings.simplefilter("always")
        certs = x509.load_pem_x509_certificates(data)
    if len(certs) != 1:
        raise MalformedInputError(
            f"certificate: PEM holds {len(certs)} CERTIFICATE blocks, expected exactly one"
        )
    with crypto_step("not a PEM certificate"):
        der = certs[0].public_bytes(serialization.Encoding.DER)
    return parse_certificate(der)


__all__: Sequence[str] = (
    "FULCIO_EXTENSIONS",
    "FULCIO_EXTENSION_OIDS",
    "ISSUER_OID",
    "ISSUER_V1_OID",
    "USERNAME_SAN_OID",
    "chain_reason",
    "check_chain",
    "parse_certificate",
    "parse_certificate_pem_or_der",
)
