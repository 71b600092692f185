"""Judging an image's verdicts against what its configuration expects.

``expect`` is a watch-rule selector (``monitor/rules``): a valid artifact whose signer meets it
is expected, any other valid artifact is by an unexpected signer. ``require`` names what an
image must carry from an expected signer: a signature (cosign's simple signing, or a DSSE
statement of predicate ``https://sigstore.dev/cosign/sign/v1``), an attestation (any other
predicate), or both. The findings ``unsigned_image``, ``unexpected_signer`` and
``invalid_signature`` are read off a ``Judgment``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from monitor.core.findings import Severity
from monitor.entries.record import SigningRecord
from monitor.imagesig.verdict import Role, Status, Verdict
from monitor.rules.engine import RuleEngine
from monitor.rules.spec import RuleSpec, Selector


class Require(StrEnum):
    SIGNATURE = "signature"
    ATTESTATION = "attestation"
    BOTH = "both"

    @property
    def roles(self) -> tuple[Role, ...]:
        if self is Require.BOTH:
            return (Role.SIGNATURE, Role.ATTESTATION)
        return (Role(self.value),)


@dataclass(frozen=True)
class Judgment:
    """The verdicts on one image digest, sorted by what they mean for it."""

    image_digest: str
    expected: tuple[Verdict, ...]  # valid, and the signer meets ``expect``
    unexpected: tuple[Verdict, ...]  # valid, by a signer ``expect`` does not accept
    invalid: tuple[Verdict, ...]  # present but failing: each says why
    unproven: tuple[Verdict, ...]  # legacy forms still waiting for their inclusion proof
    unsupported: tuple[Verdict, ...]  # logged as an entry kind sigstore cannot verify
    missing: tuple[Role, ...]  # what ``require`` wants that no expected artifact gives

    @property
    def satisfied(self) -> bool:
        return not self.missing


class Expectation:
    """A compiled ``expect`` selector (``None``: any valid signer is expected) and
    ``require``."""

    def __init__(self, expect: Selector | None, require: Require = Require.SIGNATURE) -> None:
        self.require = require
        self._engine = (
            RuleEngine.compile([RuleSpec("expect", expect, None, Severity.INFO)])
            if expect is not None
            else None
        )

    def accepts(self, verdict: Verdict) -> bool:
        """Whether a valid verdict's signer meets ``expect``."""
        if not verdict.valid or verdict.signer is None:
            return False
        if self._engine is None:
            return True
        return bool(self._engine.matching_rules(record_of(verdict)))

    def judge(self, image_digest: str, verdicts: Iterable[Verdict]) -> Judgment:
        expected, unexpected, invalid, unproven, unsupported = [], [], [], [], []
        for v in verdicts:
            if v.status is Status.INVALID:
                invalid.append(v)
            elif v.status is Status.UNPROVEN:
                unproven.append(v)
            elif v.status is Status.UNSUPPORTED:
                unsupported.append(v)
            elif self.accepts(v):
                expected.append(v)
            else:
                unexpected.append(v)
        have = {v.role for v in expected}
        missing = tuple(r for r in self.require.roles if r not in have)
        return Judgment(
            image_digest,
            tuple(expected),
            tuple(unexpected),
            tuple(invalid),
            tuple(unproven),
            tuple(unsupported),
            missing,
        )


def record_of(verdict: Verdict) -> SigningRecord:
    """The verdict as the signing record the rule engine reads: its signer, the image as the
    subject, and the log entry it names (``log`` is the log ID in hex)."""
    entry = verdict.entry
    return SigningRecord(
        log=entry.log_id.hex() if entry is not None else "",
        index=entry.log_index if entry is not None else -1,
        kind=entry.kind if entry is not None else "",
        api_version=entry.api_version if entry is not None else "",
        integrated_time=entry.integrated_time if entry is not None else None,
        signers=(verdict.signer,) if verdict.signer is not None else (),
        subjects=verdict.subjects,
    )
