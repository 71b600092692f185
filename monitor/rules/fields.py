"""The values a watch rule sees in a signing record, field by field.

Field names are the selector's (``monitor.rules.spec``): ``san``, ``issuer``, ``ext:<name>``
and ``ext:<OID>``, ``key_fingerprint``, ``cert_fingerprint``, ``digest``, ``subject``,
``subject_digest``, ``kind``, ``log``. A field the record does not have is absent from the
mapping (never present with an empty value), so that no pattern, not even ``*``, can match it.

Digests appear twice, as ``alg:hex`` and as bare ``hex``, so that a rule may write either.
Fulcio extensions appear under their name and under their dotted OID; other extensions under
their OID only (with the hex of their value, as the parser keeps it).
"""

from __future__ import annotations

from monitor.entries.record import CertificateSigner, Digest, Signer, SigningRecord
from monitor.rules.spec import EXT_PREFIX

Fields = dict[str, tuple[str, ...]]
"""Field name -> every value of that field in a record (or one signer of it), no duplicates."""

# record-level fields (the same for every signer of an entry)
RECORD_FIELDS = ("digest", "subject", "subject_digest", "kind", "log")
# signer-level fields
SIGNER_FIELDS = ("san", "issuer", "key_fingerprint", "cert_fingerprint")


def record_fields(record: SigningRecord) -> Fields:
    """Every field of ``record``: its own, and those of every signer (merged)."""
    acc: dict[str, list[str]] = {}
    for signer in record.signers:
        _add_signer(acc, signer)
    _add_record(acc, record)
    return _freeze(acc)


def record_level_fields(record: SigningRecord) -> Fields:
    """The fields that belong to the entry rather than to one signer: digests, subjects,
    kind and log."""
    acc: dict[str, list[str]] = {}
    _add_record(acc, record)
    return _freeze(acc)


def signer_fields(signer: Signer) -> Fields:
    """The fields of one signer: SANs, issuer, extensions, key and certificate fingerprints."""
    acc: dict[str, list[str]] = {}
    _add_signer(acc, signer)
    return _freeze(acc)


def signer_field(signer: Signer, field: str) -> tuple[str, ...]:
    """The values of one signer field (``()`` when the signer has none): what
    ``signer_fields(signer).get(field, ())`` gives, without extracting every other field."""
    if isinstance(signer, CertificateSigner):
        if field == "san":
            values = [s.value for s in signer.sans]
        elif field == "issuer":
            values = [signer.issuer] if signer.issuer is not None else []
        elif field.startswith(EXT_PREFIX):
            name = field[len(EXT_PREFIX) :]
            values = [e.value for e in signer.extensions if name in (e.name, e.oid)]
        elif field == "cert_fingerprint":
            return (signer.fingerprint,)
        elif field == "key_fingerprint":
            return (signer.key.fingerprint,)
        else:
            return ()
        return tuple(dict.fromkeys(values))
    return (signer.fingerprint,) if field == "key_fingerprint" else ()


def _add_signer(acc: dict[str, list[str]], signer: Signer) -> None:
    if isinstance(signer, CertificateSigner):
        if signer.sans:
            acc.setdefault("san", []).extend(s.value for s in signer.sans)
        if signer.issuer is not None:
            acc.setdefault("issuer", []).append(signer.issuer)
        for ext in signer.extensions:
            if ext.name is not None:
                acc.setdefault(EXT_PREFIX + ext.name, []).append(ext.value)
            acc.setdefault(EXT_PREFIX + ext.oid, []).append(ext.value)
        acc.setdefault("cert_fingerprint", []).append(signer.fingerprint)
        acc.setdefault("key_fingerprint", []).append(signer.key.fingerprint)
    else:
        acc.setdefault("key_fingerprint", []).append(signer.fingerprint)


def _add_record(acc: dict[str, list[str]], record: SigningRecord) -> None:
    digests = list(record.artifact_digests)
    if record.payload_hash is not None:
        digests.append(record.payload_hash)
    if digests:
        acc["digest"] = _digest_values(digests)
    if record.subjects:
        acc["subject"] = [s.name for s in record.subjects]
        subject_digests = [d for s in record.subjects for d in s.digests]
        if subject_digests:
            acc["subject_digest"] = _digest_values(subject_digests)
    acc["kind"] = [record.kind]
    acc["log"] = [record.log]


def _digest_values(digests: list[Digest]) -> list[str]:
    out: list[str] = []
    for d in digests:
        out.append(f"{d.algorithm}:{d.value}")
        out.append(d.value)
    return out


def _freeze(acc: dict[str, list[str]]) -> Fields:
    return {
        name: tuple(dict.fromkeys(values)) if len(values) > 1 else (values[0],)
        for name, values in acc.items()
    }
