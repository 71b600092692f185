"""Parse throughput on a realistic mix of real entries, beside the least work any monitor must
do per entry, and what dominates the cost.

The least work: the leaf hash, the JSON, the base64 of the signer, the certificate or key
loaded by ``cryptography``, the certificate's extensions and SAN names. It and the full parse
(``parse_entry`` into a ``SigningRecord``) take turns on the same entries, a round each, so
that the ratio of the two holds on a shared, noisy machine.

The measure is on the production-like corpus (``production_corpus``): every certificate fresh
as Fulcio issues them (key, serial, validity, subject key identifier, SCT), so that nothing
remembered from one certificate helps the next unless it repeats in production too. Given
beside it: the same with a new identity, commit and run for every certificate too (nothing
repeats but the issuer's parts: the worst case), and the repeating corpus (the same eleven
entries over and over: every cache warm).

Run: .venv/bin/python -m bench.bench_parse [--seconds S]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import json
import pstats
import statistics
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bench.corpus import Sample, corpus, production_corpus, signer_fields
from monitor.entries.parse import parse_entry, with_chain_status
from monitor.entries.record import CertificateSigner, MalformedEntry
from monitor.trust import load_trust_root


def _signers_b64(spec: Any, kind: str) -> list[str]:
    """Where each kind of the corpus keeps the base64 of its certificate or key."""
    return [holder[key] for holder, key in signer_fields(spec, kind)]


def least_work(body: bytes) -> int:
    """What any monitor must do with an entry; the number of names and extensions it read."""
    hashlib.sha256(b"\x00" + body).digest()  # RFC 6962 leaf hash
    doc = json.loads(body)
    read = 0
    for b64 in _signers_b64(doc["spec"], doc["kind"]):
        pem = base64.b64decode(b64)
        if not pem.startswith(b"-----BEGIN CERTIFICATE-----"):
            load_pem_public_key(pem)
            continue
        cert = x509.load_pem_x509_certificate(pem)
        for ext in cert.extensions:
            value = ext.value
            if isinstance(value, x509.SubjectAlternativeName):
                read += len(list(value))
            read += 1
    return read


def run(seconds: float, samples: list[Sample] | None = None) -> dict[str, float]:
    """The parse beside the least work on ``samples`` (the production-like corpus unless
    given)."""
    samples = production_corpus() if samples is None else samples
    for s in samples:  # warm up, and prove every sample parses
        r = parse_entry(s.body, log="bench", index=0, attestation=s.attestation)
        assert not isinstance(r, MalformedEntry), r.reason
        assert least_work(s.body) > 0 or not isinstance(r.signers[0], CertificateSigner)
    n = 0
    cpu = least_cpu = 0.0
    ratios: list[float] = []  # of each round's parse to its least work
    wall0 = time.perf_counter()
    while time.perf_counter() - wall0 < seconds or len(ratios) < 5:  # a round each, in turn
        t0 = time.process_time()
        for s in samples:
            parse_entry(s.body, log="bench", index=n, attestation=s.attestation)
        t1 = time.process_time()
        for s in samples:
            least_work(s.body)
        t2 = time.process_time()
        least_cpu += t2 - t1
        cpu += t1 - t0
        ratios.append((t1 - t0) / (t2 - t1))
        n += len(samples)
    cas = load_trust_root().certificate_authorities
    # on the real certificates, which chain to production Fulcio (the fresh ones do not)
    parsed = [parse_entry(s.body, log="b", index=0) for s in corpus()]
    t0 = time.process_time()
    rounds = 0
    while time.process_time() - t0 < seconds / 4:
        for r in parsed:
            with_chain_status(r, cas)
        rounds += 1
    chain_cpu = (time.process_time() - t0) / (rounds * len(parsed))
    return {
        "entries": n,
        "cpu_seconds": cpu,
        "entries_per_cpu_second": n / cpu,
        "us_per_entry": cpu / n * 1e6,
        "chain_check_us_per_entry": chain_cpu * 1e6,
        "least_work_per_cpu_second": n / least_cpu,
        "least_work_us_per_entry": least_cpu / n * 1e6,
        "parse_over_least_work": cpu / least_cpu,
        # how far the machine's noise moved each round's ratio
        "round_ratio_median": statistics.median(ratios),
        "round_ratio_min": min(ratios),
        "round_ratio_max": max(ratios),
        "rounds": len(ratios),
    }


def profile(samples: list[Sample]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(2000 // len(samples) or 1):
        for s in samples:
            parse_entry(s.body, log="bench", index=0, attestation=s.attestation)
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]  # type: ignore[attr-defined]
    lines = [
        f"  {tt / total:6.1%}  {func[2]} ({func[0].rsplit('/', 1)[-1]}:{func[1]})"
        for func, (_, _, tt, _, _) in rows
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    fresh = production_corpus()
    corpora = (
        ("production-like (every certificate fresh)", fresh),
        ("every certificate and identity fresh", production_corpus(new_identities=True)),
        ("repeating (caches warm)", corpus()),
    )
    for label, samples in corpora:
        res = run(args.seconds, samples)
        print(f"{label}:")
        print(
            f"  parse: {res['entries_per_cpu_second']:,.0f} entries per CPU second "
            f"({res['us_per_entry']:.1f} us per entry, {res['entries']:,} entries)"
        )
        print(
            f"  least work: {res['least_work_per_cpu_second']:,.0f} entries per CPU second "
            f"({res['least_work_us_per_entry']:.1f} us per entry); the parse costs "
            f"{res['parse_over_least_work']:.2f}x the least work"
        )
        print(
            f"  Fulcio chain check (only where a rule needs it): "
            f"{res['chain_check_us_per_entry']:.0f} us per entry"
        )
    print("where parse time goes on the production-like corpus (self time):")
    print(profile(fresh))


if __name__ == "__main__":
    main()
