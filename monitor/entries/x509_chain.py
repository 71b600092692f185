"""Whether a Fulcio CA of the trust root issued a certificate signer: ``chain_reason`` and
``check_chain``, which never raise (a signature verification each: done where a rule needs it,
not on every entry of the log)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from monitor.core.authority import CertificateAuthority
from monitor.entries.record import CertificateSigner, ChainStatus


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.key_identifier


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _same_key(leaf_aki: bytes | None, issuer: x509.Certificate) -> bool:
    """Cheap pre-filter: key identifiers rule a CA out only when both exist and differ."""
    ski = _ski(issuer)
    return leaf_aki is None or ski is None or ski == leaf_aki


def _within(when: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= when) and (end is None or when <= end)


def _window_problem(leaf: x509.Certificate, ca: CertificateAuthority) -> str | None:
    """Why the dates rule out ``ca`` as the issuer of ``leaf``, or None if they do not."""
    issuer = ca.chain[0]
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not _within(start, ca.valid_from, ca.valid_until):
        return f"issued {start.isoformat()}, outside the validity of CA {ca.uri}"
    lo, hi = issuer.not_valid_before_utc, issuer.not_valid_after_utc
    if not (_within(start, lo, hi) and _within(end, lo, hi)):
        return (
            f"validity {start.isoformat()}..{end.isoformat()} exceeds that of the issuing"
            f" certificate of CA {ca.uri} ({lo.isoformat()}..{hi.isoformat()})"
        )
    return None


def _issue_problem(leaf: x509.Certificate, ca: CertificateAuthority) -> str | None:
    """Why ``ca`` did not issue ``leaf`` (dates, then signature), or None if it did."""
    problem = _window_problem(leaf, ca)
    if problem is not None:
        return problem
    try:
        leaf.verify_directly_issued_by(ca.chain[0])
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return f"signature does not verify with CA {ca.uri}"
    return None


def _candidates(
    leaf: x509.Certificate, cas: Sequence[CertificateAuthority]
) -> tuple[list[CertificateAuthority], str | None]:
    """CAs whose issuing certificate could have issued ``leaf`` by name and key ID."""
    dn = leaf.issuer.rfc4514_string()
    named = [ca for ca in cas if ca.chain and ca.chain[0].subject == leaf.issuer]
    if not named:
        return [], f"no Fulcio CA named {dn}"
    aki = _aki(leaf)
    keyed = [ca for ca in named if _same_key(aki, ca.chain[0])]
    if not keyed:
        return [], f"no Fulcio CA named {dn} with key identifier {aki.hex() if aki else ''}"
    return keyed, None


def _reason(
    cert: CertificateSigner, cas: Sequence[CertificateAuthority]
) -> tuple[ChainStatus, str]:
    if not cert.der:
        return ChainStatus.UNTRUSTED, "no certificate bytes to check"
    leaf = x509.load_der_x509_certificate(cert.der)
    candidates, why = _candidates(leaf, cas)
    problems: list[str] = [why] if why else []
    for ca in candidates:
        problem = _issue_problem(leaf, ca)
        if problem is None:
            return ChainStatus.VERIFIED, f"issued by {leaf.issuer.rfc4514_string()} ({ca.uri})"
        if problem not in problems:
            problems.append(problem)
    return ChainStatus.UNTRUSTED, "; ".join(problems)


def chain_reason(
    cert: CertificateSigner, cas: Sequence[CertificateAuthority]
) -> tuple[ChainStatus, str]:
    """Whether a Fulcio CA of ``cas`` directly issued ``cert``, and why. Never raises."""
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            return _reason(cert, cas)
    except Exception as e:  # a check that cannot complete is a failed check, never a crash
        return ChainStatus.UNTRUSTED, f"cannot check the chain: {type(e).__name__}: {e}"


def check_chain(cert: CertificateSigner, cas: Sequence[CertificateAuthority]) -> ChainStatus:
    """VERIFIED when a Fulcio CA of ``cas`` directly issued ``cert`` while valid; else
    UNTRUSTED. Never raises."""
    return chain_reason(cert, cas)[0]


__all__: Sequence[str] = ("chain_reason", "check_chain")
