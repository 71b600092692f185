"""Any Rekor entry body, v1 or v2, into one ``ParseResult``.

The contract: ``parse_entry`` never raises. Known kinds give a ``SigningRecord``; unknown kinds
or versions a ``SigningRecord`` with ``known=False``; anything malformed a ``MalformedEntry``
with a precise reason and the raw bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace

from monitor.core.authority import CertificateAuthority
from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.entries import v1, v2
from monitor.entries.common import EntryFields
from monitor.entries.record import (
    CertificateSigner,
    MalformedEntry,
    ParseResult,
    SigningRecord,
    StatementSource,
    Subject,
)
from monitor.entries.statement import Envelope, parse_statement
from monitor.entries.x509 import check_chain

MAX_BODY_BYTES = 4 << 20
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_KINDS = {**v1.KINDS, **v2.KINDS}


def parse_entry(
    body: bytes,
    *,
    log: str,
    index: int,
    integrated_time: int | None = None,
    attestation: bytes | None = None,
    envelope: Envelope | None = None,
) -> ParseResult:
    """Parse one entry body (the leaf bytes). ``attestation`` is Rekor v1's
    ``attestation.data``; ``envelope`` a DSSE envelope held beside the entry (a bundle's)."""
    header: tuple[str, str] | None = None
    try:
        doc = _load(body)
        top = JsonReader(doc, "body")
        header = (top.get("kind").str(), top.get("apiVersion").str())
        parser = _KINDS.get(header)
        if parser is None:
            return SigningRecord(
                log, index, *header, integrated_time=integrated_time, known=False, raw_body=body
            )
        fields = parser(top.get("spec"))
        return _record(
            log=log,
            index=index,
            header=header,
            integrated_time=integrated_time,
            f=fields,
            body=body,
            attestation=attestation,
            envelope=envelope,
        )
    except MalformedInputError as e:
        reason = str(e)
    except Exception as e:
        reason = f"internal parser error: {type(e).__name__}: {e}"
    kind, version = header if header else (None, None)
    return MalformedEntry(log, index, reason, body, kind, version)


def _load(body: bytes) -> object:
    if len(body) > MAX_BODY_BYTES:
        raise MalformedInputError(f"body is {len(body)} bytes, more than {MAX_BODY_BYTES}")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedInputError("body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise MalformedInputError(f"body is not JSON: {e.msg} at byte {e.pos}") from None
    except RecursionError:
        raise MalformedInputError("body is not JSON: nested too deeply") from None


def _record(
    *,
    log: str,
    index: int,
    header: tuple[str, str],
    integrated_time: int | None,
    f: EntryFields,
    body: bytes,
    attestation: bytes | None,
    envelope: Envelope | None,
) -> SigningRecord:
    notes = list(f.notes)
    payload_hash, payload_type = f.payload_hash, f.payload_type
    artifacts = f.artifact_digests
    subjects: tuple[Subject, ...] = ()
    source = StatementSource.NONE
    statement_bytes: bytes | None = None

    if attestation is not None and payload_hash is not None:
        if _sha256(attestation) == payload_hash.value and payload_hash.algorithm == "sha256":
            statement_bytes, source = attestation, StatementSource.ATTESTATION
        else:
            notes.append("attestation does not match the payload hash: ignored")
    if envelope is not None and statement_bytes is None:
        if payload_hash is not None:
            if envelope.payload_digest() == payload_hash:
                statement_bytes, source = envelope.payload, StatementSource.ENVELOPE
            else:
                notes.append("envelope does not match the payload hash: ignored")
        elif envelope.pae_digest() in artifacts:
            # Rekor v2 logs DSSE as a hashedrekord over the PAE: the digest is no artifact's
            notes.append(f"DSSE envelope logged as hashedrekord over its PAE {artifacts[0]}")
            artifacts = ()
            payload_hash = envelope.payload_digest()
            statement_bytes, source = envelope.payload, StatementSource.ENVELOPE
        if statement_bytes is not None:
            payload_type = envelope.payload_type
    if statement_bytes is not None and payload_type not in (None, INTOTO_PAYLOAD_TYPE):
        statement_bytes, source = None, StatementSource.NONE  # e.g. text/plain: no subjects
    if statement_bytes is not None:
        try:
            subjects = parse_statement(statement_bytes).subjects
        except MalformedInputError as e:
            notes.append(f"payload is not an in-toto statement: {e}")
            source = StatementSource.NONE
    return SigningRecord(
        log=log,
        index=index,
        kind=header[0],
        api_version=header[1],
        integrated_time=integrated_time,
        signers=f.signers,
        artifact_digests=artifacts,
        payload_hash=payload_hash,
        envelope_hash=f.envelope_hash,
        payload_type=payload_type,
        subjects=subjects,
        subjects_source=source,
        notes=tuple(notes),
        raw_body=body,
    )


def with_chain_status(result: ParseResult, cas: Sequence[CertificateAuthority]) -> ParseResult:
    """Check every certificate signer against the Fulcio CAs (a signature verification each:
    done where it matters, not on every entry of the log)."""
    if isinstance(result, MalformedEntry) or not result.signers:
        return result
    signers = tuple(
        replace(s, chain=check_chain(s, cas)) if isinstance(s, CertificateSigner) else s
        for s in result.signers
    )
    return replace(result, signers=signers)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
