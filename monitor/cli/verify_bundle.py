"""``tlog-monitor verify-bundle``: check the transparency-log part of evidence files.

One line per file, which says what it is: ``OK`` (verified; ``[promise only: ...]`` when the
verdict rests on the log's signed entry timestamp alone), ``FAIL`` (a check failed, or a field
of a known form is malformed) or ``ERROR`` (nothing could be checked: the file cannot be read,
is not JSON, or is of no form we know; or ``--online`` could not reach the log).

Exit status: 0 when every file verified, 1 when at least one failed verification, else 2 when
something could not be checked (a failure outranks an error: a script must not miss it); 2 as
well for bad arguments or an unusable trusted root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.bundles.parse import EntryEvidence, Evidence, parse_evidence
from monitor.bundles.verify import (
    Check,
    Report,
    shard_offsets_from_loginfo,
    verify_entry,
    verify_evidence,
)
from monitor.cli.inputs import read_input
from monitor.cli.options import add_json
from monitor.core.errors import (
    ConfigError,
    MalformedInputError,
    TransientLogError,
    UnreadableInputError,
    VerificationError,
)
from monitor.core.escape import escape
from monitor.trust import TrustRoot, load_trust_root

Status = Literal["ok", "fail", "error"]
EXIT = {"ok": 0, "fail": 1, "error": 2}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify-bundle",
        help="verify Sigstore bundles and Rekor entries against the log",
        description=(
            "Verify the transparency-log part of Sigstore bundles (v0.1 to v0.3, either field "
            "spelling), Rekor v1 LogEntry, LogEntryAnon and LogInfo JSON, Rekor v2 "
            "TransparencyLogEntry JSON and cosign's rekor bundle: leaf hash, inclusion proof, "
            "checkpoint signature, checkpoint/proof agreement, the SignedEntryTimestamp and the "
            "log key's validity. Offline unless --online. Signatures over artifacts are not "
            "checked. Exit status: 0 all verified, 1 at least one failed, 2 something could "
            "not be checked (unreadable, not JSON, unknown form, log unreachable)."
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
    p.add_argument(
        "--require-proof",
        action="store_true",
        help="fail an entry that has only the log's promise (a signed entry timestamp) and no "
        "inclusion proof bound to a signed checkpoint",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="for an entry that has only the log's promise, fetch its inclusion proof and "
        "checkpoint from the Rekor v1 log the trusted root names, and verify them",
    )
    add_json(p, lines="file, printed as each is verified")
    p.add_argument("-v", "--verbose", action="store_true", help="list every check")
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class Options:
    trust: TrustRoot
    shard_offsets: Mapping[int, int] | None = None
    require_proof: bool = False
    online: bool = False


@dataclass(frozen=True)
class FileResult:
    path: str
    status: Status
    form: str | None
    reports: tuple[Report, ...]
    error: str | None = None  # why nothing (or not everything) could be checked


def verify_file(path: str, options: Options) -> FileResult:
    """Read, parse and verify one file; never raises for what the file holds."""
    try:
        evidence = parse_evidence(read_input(path))
    except UnreadableInputError as e:
        return FileResult(path, "error", None, (), str(e))
    except MalformedInputError as e:
        return FileResult(path, "fail", None, (), f"malformed: {e}")
    # with --online, a promise is first completed from the log, then judged
    reports = verify_evidence(
        evidence,
        options.trust,
        options.shard_offsets,
        require_proof=options.require_proof and not options.online,
    )
    if options.online and any(r.promise for r in reports):
        try:
            reports = asyncio.run(_online(evidence, reports, options))
        except TransientLogError as e:
            status: Status = "fail" if not all(r.ok for r in reports) else "error"
            return FileResult(path, status, evidence.form, reports, f"--online: {e}")
    status = "ok" if all(r.ok for r in reports) else "fail"
    return FileResult(path, status, evidence.form, reports)


async def _online(
    evidence: Evidence, reports: tuple[Report, ...], options: Options
) -> tuple[Report, ...]:
    """Each promise-only report replaced by the full verification of the entry with the proof
    its log serves; a log that serves another entry fails it."""
    import aiohttp

    from monitor.bundles.online import fetch_proof

    out = list(reports)
    async with aiohttp.ClientSession() as session:
        for i, (ev, report) in enumerate(zip(evidence.entries, reports, strict=True)):
            log = options.trust.log_by_id(ev.log_id)
            if not report.ok or report.promise is None or log is None:
                continue
            try:
                full = await fetch_proof(ev, log, session)
            except VerificationError as e:
                failed = Check(e.check, False, e.message)
                out[i] = Report(report.label, report.summary, (*report.checks, failed))
                continue
            out[i] = _full(full, options)
    return tuple(out)


def _full(ev: EntryEvidence, options: Options) -> Report:
    done = verify_entry(ev, options.trust, options.shard_offsets, require_proof=True)
    online = Check("online", True, "inclusion proof and checkpoint fetched from the log")
    return Report(done.label, done.summary, (*done.checks, online))


def _load_shard_offsets(path: str, trust: TrustRoot) -> dict[int, int]:
    try:
        return shard_offsets_from_loginfo(parse_evidence(read_input(path)), trust)
    except (MalformedInputError, VerificationError) as e:
        raise ConfigError(f"--log-info {path}: {e}") from None


def _line(result: FileResult, verbose: bool) -> str:
    """The file's line (and with ``verbose`` one per check), each escaped: summaries and
    details quote what the file holds (kinds, versions, entry IDs, origins)."""
    reports, form = result.reports, result.form
    if result.status == "ok":
        what = "; ".join(
            f"{r.summary} [{', '.join(c.name for c in r.checks)}]"
            + (f" [promise only: {r.promise}]" if r.promise else "")
            for r in reports
        )
        line = f"OK    {result.path}: {form}: {what}"
    elif not reports:
        label = "FAIL " if result.status == "fail" else "ERROR"
        line = f"{label} {result.path}: {result.error}"
    else:
        label = "FAIL " if result.status == "fail" else "ERROR"
        failed = "; ".join(
            (f"{r.label}: " if len(reports) > 1 else "")
            + "; ".join(f"{c.name} failed: {c.detail}" for c in r.failures)
            for r in reports
            if not r.ok
        )
        parts = [p for p in (failed, result.error) if p]
        line = f"{label} {result.path}: {form}: {'; '.join(parts)}"
    lines = [escape(line)]
    if verbose:
        for r in reports:
            for c in r.checks:
                lines.append(
                    escape(f"      {r.label}: {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
                )
    return "\n".join(lines)


def _json(result: FileResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "ok": result.status == "ok",
        "status": result.status,
        "form": result.form,
        "error": result.error,
        "entries": [
            {
                "label": r.label,
                "summary": r.summary,
                "ok": r.ok,
                "promise_only": r.promise,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in r.checks],
            }
            for r in result.reports
        ],
    }


def exit_status(statuses: list[Status]) -> int:
    """0 if all verified; 1 if any failed; else 2 if any could not be checked."""
    if "fail" in statuses:
        return EXIT["fail"]
    if "error" in statuses:
        return EXIT["error"]
    return EXIT["ok"]


def run(args: argparse.Namespace) -> int:
    trust = load_trust_root(args.trusted_root, args.signing_config)
    offsets = _load_shard_offsets(args.log_info, trust) if args.log_info else None
    options = Options(trust, offsets, args.require_proof, args.online)
    statuses: list[Status] = []
    files = []
    for path in args.paths:
        result = verify_file(path, options)
        statuses.append(result.status)
        if args.json:
            files.append(_json(result))
        elif args.jsonl:
            print(json.dumps(_json(result), sort_keys=True), flush=True)
        else:
            print(_line(result, args.verbose), flush=True)
    code = exit_status(statuses)
    if args.json:
        print(json.dumps({"files": files, "exit": code}, sort_keys=True, indent=2))
    return code
