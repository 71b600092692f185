"""``tlog-monitor inspect``: show what a Rekor entry says about who signed what."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from monitor.bundles.parse import parse_evidence
from monitor.cli.inputs import read_input
from monitor.cli.options import add_json
from monitor.core.encoding import b64decode_strict
from monitor.core.errors import MalformedInputError
from monitor.core.escape import escape
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import (
    CertificateSigner,
    KeySigner,
    MalformedEntry,
    ParseResult,
    SigningRecord,
)
from monitor.entries.serialize import result_json
from monitor.trust import TrustRoot, load_trust_root


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="show the signer, digests and subjects of Rekor entries",
        description=(
            "Parse a Rekor v1 LogEntry JSON, a Sigstore bundle, a Rekor v2 entry, or a raw "
            "entry body (JSON, or its base64) and print who signed what. Certificates are "
            "checked against the Fulcio CAs of the trusted root."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to inspect ('-' for stdin)")
    add_json(p, lines="entry, printed as each is read")
    p.add_argument(
        "--body", action="store_true", help="include the raw body (base64) in JSON output"
    )
    p.add_argument(
        "--trusted-root",
        metavar="FILE",
        default="default",
        help="TrustedRoot JSON whose Fulcio CAs certificates are checked against "
        "(default: Sigstore production)",
    )
    p.set_defaults(handler=run)


def results_for(data: bytes, trust: TrustRoot) -> list[ParseResult]:
    """Every entry in ``data`` parsed; raises ``MalformedInputError`` if ``data`` holds none."""
    try:
        evidence = parse_evidence(data)
    except MalformedInputError as e:
        body = _raw_body(data)
        if body is None:
            raise MalformedInputError(
                f"{e}; nor is it a raw entry body (JSON with kind and apiVersion)"
            ) from None
        return [
            with_chain_status(parse_entry(body, log="", index=-1), trust.certificate_authorities)
        ]
    if not evidence.entries:
        raise MalformedInputError(f"a {evidence.form} holds no entries")
    out: list[ParseResult] = []
    for ev in evidence.entries:
        log = trust.log_by_id(ev.log_id)
        result = parse_entry(
            ev.body,
            log=log.key_name if log else ev.log_id.hex(),
            index=ev.log_index,
            integrated_time=ev.integrated_time or None,
            attestation=ev.attestation,
            envelope=evidence.envelope,
        )
        out.append(with_chain_status(result, trust.certificate_authorities))
    return out


def _raw_body(data: bytes) -> bytes | None:
    text = data.strip()
    if text.startswith(b"{"):
        return text if _has_kind(text) else None
    try:
        decoded = b64decode_strict(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return decoded if _has_kind(decoded) else None


def _has_kind(data: bytes) -> bool:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc


def run(args: argparse.Namespace) -> int:
    trust = load_trust_root(args.trusted_root)
    status = 0
    entries: list[dict[str, object]] = []
    unreadable: list[dict[str, str]] = []
    for path in args.paths:
        try:
            results = results_for(read_input(path), trust)
        except MalformedInputError as e:
            if args.json:
                unreadable.append({"path": path, "error": str(e)})
            else:
                print(escape(f"{path}: cannot inspect: {e}"), file=sys.stderr)
            status = 1
            continue
        for r in results:
            if isinstance(r, MalformedEntry):
                status = 1
            doc = {"path": path, **result_json(r, include_body=args.body)}
            if args.json:
                entries.append(doc)
            elif args.jsonl:
                print(json.dumps(doc))
            else:
                # every value shown came from the entry: escaped, line by line
                print("\n".join(escape(line) for line in describe(r, path)), end="\n\n")
    if args.json:
        print(json.dumps({"entries": entries, "unreadable": unreadable}, indent=2))
    return status


def describe(r: ParseResult, path: str) -> Iterator[str]:
    where = f"{r.log} #{r.index}" if r.index >= 0 else "raw body"
    if isinstance(r, MalformedEntry):
        yield f"{path}: {where}: MALFORMED {r.kind or '?'} {r.api_version or ''}".rstrip()
        yield f"  reason      {r.reason}"
        return
    head = f"{path}: {where}: {r.kind} {r.api_version}"
    if r.integrated_time:
        head += f", integrated {datetime.fromtimestamp(r.integrated_time, UTC).isoformat()}"
    yield head
    if not r.known:
        yield "  (kind or version not known to this version of tlog-monitor: recorded as is)"
    for s in r.signers:
        yield from _signer_lines(s)
    yield from _record_lines(r)


def _signer_lines(s: CertificateSigner | KeySigner) -> Iterator[str]:
    if isinstance(s, KeySigner):
        yield f"  key         {_key(s)}"
        for name, value in s.details:
            yield f"    {name:<11} {value}"
        return
    yield f"  certificate {s.fingerprint}  chain: {s.chain}"
    for san in s.sans:
        yield f"    san       {san.type}: {san.value}"
    yield f"    issuer    {s.issuer or '(none)'}"
    for e in s.extensions:
        if e.name and e.name != "issuer":
            yield f"    {e.name:<42} {e.value}"
    for e in s.extensions:
        if not e.name:
            yield f"    oid {e.oid:<38} {'(critical) ' if e.critical else ''}{e.value[:64]}"
    yield f"    serial    {s.serial}"
    yield f"    valid     {s.not_before.isoformat()} to {s.not_after.isoformat()}"
    yield f"    issued by {s.issuer_dn}"
    yield f"    key       {_key(s.key)}"


def _key(k: KeySigner) -> str:
    shape = " ".join(str(x) for x in (k.key_type, k.curve, k.size and f"{k.size} bits") if x)
    return f"{shape}  {k.fingerprint}"


def _record_lines(r: SigningRecord) -> Iterator[str]:
    for d in r.artifact_digests:
        yield f"  artifact    {d}"
    if r.payload_hash:
        yield f"  payload     {r.payload_hash}  {r.payload_type or ''}".rstrip()
    if r.envelope_hash:
        yield f"  envelope    {r.envelope_hash}"
    for subj in r.subjects:
        digests = ", ".join(str(d) for d in subj.digests)
        yield f"  subject     {subj.name}  {digests}  (from {r.subjects_source})"
    for note in r.notes:
        yield f"  note        {note}"
