"""``tlog-monitor verify-bundle``: offline check of the transparency-log part of evidence files.

One line per file; exit 0 only when every file verifies, 1 when any fails, 2 when the command
itself cannot run (for example, an unreadable trusted root).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from monitor.cli.inputs import read_input
from monitor.errors import ConfigError, MalformedInputError, VerificationError
from monitor.evidence import parse_evidence
from monitor.trust import TrustRoot, load_trust_root
from monitor.verify_evidence import Report, shard_offsets_from_loginfo, verify_evidence


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify-bundle",
        help="verify Sigstore bundles and Rekor entries against the log, offline",
        description=(
            "Verify the transparency-log part of Sigstore bundles (v0.1 to v0.3), Rekor v1 "
            "LogEntry and LogInfo JSON, and Rekor v2 TransparencyLogEntry JSON: leaf hash, "
            "inclusion proof, checkpoint signature, checkpoint/proof agreement and the "
            "SignedEntryTimestamp where present. Signatures over artifacts are not checked."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to verify ('-' for stdin)")
    p.add_argument(
        "--trusted-root",
        metavar="FILE",
        default="default",
        help="TrustedRoot JSON to verify against (default: Sigstore production)",
    )
    p.add_argument(
        "--signing-config",
        metavar="FILE",
        default="default",
        help="SigningConfig JSON naming each log's API version (default: Sigstore production)",
    )
    p.add_argument(
        "--log-info",
        metavar="FILE",
        help="a Rekor v1 LogInfo (GET /api/v1/log) whose shard layout checks global indexes",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("-v", "--verbose", action="store_true", help="list every check")
    p.set_defaults(handler=run)


def verify_file(
    path: str, trust: TrustRoot, shard_offsets: Mapping[int, int] | None = None
) -> tuple[str, tuple[Report, ...]]:
    """Return the evidence form and the reports; raises ``MalformedInputError``."""
    evidence = parse_evidence(read_input(path))
    return evidence.form, verify_evidence(evidence, trust, shard_offsets)


def _load_shard_offsets(path: str, trust: TrustRoot) -> dict[int, int]:
    try:
        return shard_offsets_from_loginfo(parse_evidence(read_input(path)), trust)
    except (MalformedInputError, VerificationError) as e:
        raise ConfigError(f"--log-info {path}: {e}") from None


def _line(path: str, form: str, reports: tuple[Report, ...], verbose: bool) -> str:
    ok = all(r.ok for r in reports)
    if ok:
        what = "; ".join(f"{r.summary} [{', '.join(c.name for c in r.checks)}]" for r in reports)
        line = f"OK    {path}: {form}: {what}"
    else:
        failed = "; ".join(
            (f"{r.label}: " if len(reports) > 1 else "")
            + "; ".join(f"{c.name} failed: {c.detail}" for c in r.failures)
            for r in reports
            if not r.ok
        )
        line = f"FAIL  {path}: {form}: {failed}"
    if verbose:
        for r in reports:
            for c in r.checks:
                line += f"\n      {r.label}: {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}"
    return line


def _json(path: str, form: str | None, reports: tuple[Report, ...], error: str | None) -> str:
    doc: dict[str, Any] = {
        "path": path,
        "ok": error is None and all(r.ok for r in reports),
        "form": form,
        "error": error,
        "entries": [
            {
                "label": r.label,
                "summary": r.summary,
                "ok": r.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in r.checks],
            }
            for r in reports
        ],
    }
    return json.dumps(doc, sort_keys=True)


def run(args: argparse.Namespace) -> int:
    trust = load_trust_root(args.trusted_root, args.signing_config)
    offsets = _load_shard_offsets(args.log_info, trust) if args.log_info else None
    all_ok = True
    for path in args.paths:
        try:
            form, reports = verify_file(path, trust, offsets)
        except MalformedInputError as e:
            all_ok = False
            out = _json(path, None, (), str(e)) if args.json else f"FAIL  {path}: malformed: {e}"
            print(out, flush=True)
            continue
        ok = all(r.ok for r in reports)
        all_ok &= ok
        print(
            _json(path, form, reports, None)
            if args.json
            else _line(path, form, reports, args.verbose),
            flush=True,
        )
    return 0 if all_ok else 1
