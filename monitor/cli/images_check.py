"""``tlog-monitor images check REF``: one image reference (a tag or a digest) read from its
registry now: its signatures and attestations, each verified, its signer judged, its log
entry tied to the log; the verdict of each digest (an index and each of its platforms).

Exit status: 0 fine; 1 a finding (unsigned, an unexpected signer, an invalid signature, a
log entry the log holds otherwise), which outranks 2: something could not be checked (the
registry, the configuration, the reference). No grace period applies here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator

import aiohttp

from monitor.cli.images_ours import stored_checkpoints
from monitor.cli.options import add_config, add_json
from monitor.config.images import ImageSettings
from monitor.config.load import load_settings
from monitor.core.errors import ConfigError, MonitorError
from monitor.core.escape import escape
from monitor.core.imageref import ImageReference, parse_reference
from monitor.core.metrics import ClientMetrics
from monitor.images import (
    DigestReport,
    SignatureReport,
    check_reference,
    expectation_of,
    findings_of,
    report_json,
    status_of,
)
from monitor.images.setup import build_checker, image_settings_for, load_image_trust
from monitor.imagesig import Expectation, Require
from monitor.registry.client import RegistryClient
from monitor.registry.setup import client_for
from monitor.rules.spec import Selector

EXIT_FINE, EXIT_FINDING, EXIT_UNCHECKED = 0, 1, 2


def register(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = group.add_parser(
        "check",
        help="check one image reference's signatures now",
        description=(
            "Read one image reference (REPOSITORY:TAG or REPOSITORY@sha256:...) from its "
            "registry and check what is attached to it (referrers, cosign's .sig and .att): "
            "each signature verified with sigstore against the configured trust root, its "
            "signer judged against the images: entry of its repository (or --expect-san and "
            "--expect-issuer), its log entry read back from the log and proven. An index is "
            "checked with each of its platforms. No grace period. Exit status: 0 fine, 1 a "
            "finding, 2 could not check."
        ),
    )
    p.add_argument("ref", metavar="REF", help="an image reference with a tag or a digest")
    add_config(p)
    add_json(p)
    p.add_argument(
        "--expect-san",
        metavar="PATTERN",
        help="the expected signer's identity (a glob with *), instead of the configured expect",
    )
    p.add_argument(
        "--expect-issuer", metavar="PATTERN", help="the expected signer's OIDC issuer (a glob)"
    )
    p.add_argument(
        "--require",
        choices=[r.value for r in Require],
        help="what an expected signer must attach (default: the configured require, else "
        "signature)",
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="read a registry on loopback over plain HTTP (when no images: entry says so)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ref = parse_reference(args.ref)
    image = image_settings_for(settings, ref.repository)
    expectation = _expectation(args, image)
    image_trust = load_image_trust(settings)

    async def check() -> list[DigestReport]:
        metrics = ClientMetrics.standalone()
        async with aiohttp.ClientSession() as session:
            if image is not None:
                client = client_for(image, session, metrics=metrics)
            else:
                client = RegistryClient(
                    ref.repository, session, metrics=metrics, insecure_http=args.insecure_http
                )
            async with stored_checkpoints(settings, image_trust.trust) as (ours, note):
                if note is not None:
                    print(escape(f"tlog-monitor: note: {note}"), file=sys.stderr)
                checker = build_checker(settings, image_trust, session, metrics=metrics, ours=ours)
                return await check_reference(ref, client, checker, expectation)

    try:
        reports = asyncio.run(check())
    except MonitorError as e:
        if not args.json:
            raise
        # a script reading JSON gets JSON: why nothing could be checked
        doc = {"reference": str(ref), "error": str(e), "digests": [], "exit": EXIT_UNCHECKED}
        print(json.dumps(doc, indent=2, sort_keys=True))
        return EXIT_UNCHECKED
    code = exit_status(reports)
    if args.json:
        doc = {
            "reference": str(ref),
            "require": str(expectation.require),
            "digests": [report_json(r) for r in reports],
            "error": None,
            "exit": code,
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for line in human_lines(ref, reports, code):
            print(escape(line))
    return code


def _expectation(args: argparse.Namespace, image: ImageSettings | None) -> Expectation:
    """The configured entry's, the flags replacing what they name."""
    fields = {k: v for k, v in (("san", args.expect_san), ("issuer", args.expect_issuer)) if v}
    try:
        expect = Selector.parse(fields) if fields else image.expect if image else None
    except ConfigError as e:
        raise ConfigError(f"--expect-san/--expect-issuer: {e}") from None
    if args.require:
        require = Require(args.require)
    elif image is not None:
        require = expectation_of(image).require
    else:
        require = Require.SIGNATURE
    return Expectation(expect, require)


def exit_status(reports: list[DigestReport]) -> int:
    """1 if any digest means a finding; else 2 if any could not be checked (the registry, or
    the log its signatures name); else 0."""
    if any(findings_of(r) for r in reports):
        return EXIT_FINDING
    if any(status_of(r) == "unknown" for r in reports):
        return EXIT_UNCHECKED
    return EXIT_FINE


_MEANING = {EXIT_FINE: "fine", EXIT_FINDING: "a finding", EXIT_UNCHECKED: "could not check"}


def human_lines(ref: ImageReference, reports: list[DigestReport], code: int) -> Iterator[str]:
    """What a responder reads; every value from a registry or a log is escaped by the
    caller, line by line."""
    for r in reports:
        where = f"{r.repository}@{r.digest}"
        if r.tags:
            where += f" (tag {', '.join(r.tags)})"
        if r.platform or r.index_digest:
            where += f" [platform {r.platform or '?'} of index {r.index_digest}]"
        yield f"{where}: {status_of(r).upper()}"
        if r.error is not None:
            yield f"  could not check: {r.error}"
            continue
        if not r.signatures:
            yield "  nothing attached: no signature or attestation"
        for s in r.signatures:
            yield from _signature_lines(r, s)
        missing = ", ".join(str(m) for m in r.judgment.missing)
        if missing:
            yield f"  missing    {missing} from an expected signer"
        yield f"  findings   {', '.join(findings_of(r)) or 'none'}"
    yield f"{ref}: exit {code} ({_MEANING[code]})"


def _signature_lines(r: DigestReport, s: SignatureReport) -> Iterator[str]:
    v = s.verdict
    inherited = " (the index's)" if v.image_digest != r.digest else ""
    yield f"  {v.role or 'artifact':<10} {v.status:<11} {v.form} from {v.source}{inherited}"
    if v.predicate_type:
        yield f"    predicate {v.predicate_type}"
    if v.signer is not None:
        sans = ", ".join(san.value for san in v.signer.sans) or "(no SAN)"
        judged = "expected" if v in r.judgment.expected else "not expected"
        if not v.valid:
            judged = "claimed, not verified"
        yield f"    signer   {sans} (issuer {v.signer.issuer or '?'}): {judged}"
    yield f"    reason   {v.reason}"
    if s.tie is not None:
        t = s.tie
        yield f"    log      {t.log or '(no configured log)'} #{t.index}: {t.status}: {t.detail}"
