"""The (field, value) identities of an entry that history can be asked about."""

from __future__ import annotations

from monitor.entries.record import CertificateSigner, Digest, SigningRecord
from monitor.storage.models import index_value


def normalize_digest(text: str) -> str:
    """``algorithm:hex`` in lower case; bare hex is named by its length."""
    t = text.strip().lower()
    if ":" in t:
        return t
    return {40: "sha1:", 64: "sha256:", 96: "sha384:", 128: "sha512:"}.get(len(t), "") + t


def identities(r: SigningRecord) -> set[tuple[str, str]]:
    """Every (field, value) of ``r`` that history can be asked about."""
    out: set[tuple[str, str]] = set()
    for s in r.signers:
        if isinstance(s, CertificateSigner):
            out.update(("san", san.value) for san in s.sans)
            if s.issuer:
                out.add(("issuer", s.issuer))
            out.update((f"ext:{e.name}", e.value) for e in s.extensions if e.name)
            out.add(("fingerprint", s.fingerprint))
            out.add(("fingerprint", s.key.fingerprint))
        else:
            out.add(("fingerprint", s.fingerprint))
    digests: list[Digest] = [*r.artifact_digests]
    digests += [d for d in (r.payload_hash, r.envelope_hash) if d is not None]
    for subj in r.subjects:
        out.add(("subject", subj.name))
        for d in subj.digests:
            out.add(("subject_digest", str(d)))
            digests.append(d)
    out.update(("digest", str(d)) for d in digests)
    # values are stored capped: two long values sharing a prefix become one row
    return {(f[:128], index_value(v)) for f, v in out}
