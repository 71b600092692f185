"""Verdicts on the simulator's image signatures judged against ``expect`` and ``require``:
expected, unexpected, invalid, unproven and unsupported, and what an image misses."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.imagesig import (
    Role,
    Verdict,
)
from monitor.imagesig.judge import Expectation, Require
from monitor.rules.spec import Selector
from tests.imagesig_support import EXPECT, IMAGE, OTHER, OURS, REF, THEIRS, Sim, check, sim_world

sim = pytest.fixture(scope="module")(sim_world)


# --- judging -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verdicts(sim: Sim) -> dict[str, Verdict]:
    def legacy(form: str, who: Any) -> Verdict:
        made = getattr(sim.signer, form)(IMAGE, who, REF)
        return check(sim, made.artifact, made.log_index)

    bad = sim.signer.signature(OTHER, OURS, REF)
    return {
        "sig": legacy("signature", OURS),
        "att": legacy("attestation", OURS),
        "theirs": legacy("signature", THEIRS),
        "bundle": sim.verifier.verify(sim.signer.bundle(IMAGE, OURS, REF).artifact, IMAGE),
        "invalid": check(sim, bad.artifact, bad.log_index),
        "unproven": sim.verifier.verify(sim.signer.signature(IMAGE, OURS, REF).artifact, IMAGE),
    }


@pytest.mark.parametrize(
    ("require", "have", "missing"),
    [
        (Require.SIGNATURE, ["sig"], []),
        (Require.SIGNATURE, ["bundle"], []),  # cosign/sign/v1 is a signature
        (Require.SIGNATURE, ["att"], [Role.SIGNATURE]),
        (Require.ATTESTATION, ["att"], []),
        (Require.ATTESTATION, ["sig", "bundle"], [Role.ATTESTATION]),
        (Require.BOTH, ["sig", "att"], []),
        (Require.BOTH, ["bundle"], [Role.ATTESTATION]),
        (Require.BOTH, [], [Role.SIGNATURE, Role.ATTESTATION]),
        (Require.SIGNATURE, ["theirs", "invalid", "unproven"], [Role.SIGNATURE]),
    ],
)
def test_require(
    verdicts: dict[str, Verdict], require: Require, have: list[str], missing: list[Role]
) -> None:
    judged = Expectation(EXPECT, require).judge(IMAGE, [verdicts[k] for k in have])
    assert list(judged.missing) == missing
    assert judged.satisfied is (not missing)


def test_expected_unexpected_invalid_unproven(verdicts: dict[str, Verdict]) -> None:
    judged = Expectation(EXPECT).judge(IMAGE, verdicts.values())
    assert judged.expected == (verdicts["sig"], verdicts["att"], verdicts["bundle"])
    assert judged.unexpected == (verdicts["theirs"],)
    assert judged.invalid == (verdicts["invalid"],)
    assert judged.unproven == (verdicts["unproven"],)


def test_only_an_unexpected_signer_leaves_the_image_unsigned(verdicts: dict[str, Verdict]) -> None:
    judged = Expectation(EXPECT).judge(IMAGE, [verdicts["theirs"]])
    assert judged.unexpected == (verdicts["theirs"],)
    assert judged.missing == (Role.SIGNATURE,)


def test_without_expect_any_valid_signer_counts(verdicts: dict[str, Verdict]) -> None:
    judged = Expectation(None).judge(IMAGE, [verdicts["theirs"], verdicts["invalid"]])
    assert judged.expected == (verdicts["theirs"],)
    assert judged.satisfied


def test_extension_selectors_judge_the_signer(verdicts: dict[str, Verdict]) -> None:
    by_repo = Selector.parse(
        {"extensions": {"source-repository-uri": "https://github.com/acme/app"}}
    )
    judged = Expectation(by_repo).judge(IMAGE, [verdicts["sig"], verdicts["theirs"]])
    assert judged.expected == (verdicts["sig"],)
    assert judged.unexpected == (verdicts["theirs"],)
