"""C2SP tlog-policy: parsing every construct, every error with its line, quorum evaluation on
nested groups (against a reference evaluation on random policies), and the real staging
checkpoint under a "2 of the 3 staging witnesses" policy."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import WitnessConfigError
from monitor.tlog.policy import INLINE_GROUP, Policy, PolicyGroup
from monitor.tlog.witness import WitnessKey, verify_note_cosignatures

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINT = (
    FIXTURES / "witness" / "log2025-alpha3.size4026479.witnessed.checkpoint.txt"
).read_text()
STAGING = (FIXTURES / "witness" / "staging-witnesses.vkeys.txt").read_text().split()
LOG_VKEY = (FIXTURES / "witness" / "log2025-alpha3.vkey.txt").read_text().strip()


def vkey_of(name: str, seed: int, type_byte: int = 0x04) -> str:
    """A deterministic vkey (key ID computed here from the signed-note spec)."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"%d" % seed).digest())
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(name.encode() + b"\n" + bytes([type_byte]) + raw).digest()[:4]
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([type_byte]) + raw).decode()}"


W = [vkey_of(f"w{i}.example", i) for i in range(10)]

SIGSUM_STYLE = f"""\
# two operators; both must witness
log {LOG_VKEY} https://log2025-alpha3.rekor.sigstage.dev

witness X1 {W[1]}
witness X2 {W[2]} https://x2.example/witness
\twitness  X3\t{W[3]} \t\x20
group X-witnesses 2 X1 X2 X3

  # indented comment
witness Y1 {W[4]}
witness Y2 {W[5]}
witness Y3 {W[6]}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def test_every_construct_parses() -> None:
    p = Policy.parse(SIGSUM_STYLE, "sigsum.policy")
    (log,) = p.logs
    assert log.name == "log2025-alpha3.rekor.sigstage.dev"
    assert log.url == "https://log2025-alpha3.rekor.sigstage.dev"
    assert [w.name for w in p.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert p.witnesses[1].url == "https://x2.example/witness"
    assert p.witnesses[0].url is None
    assert p.witnesses[2].key == WitnessKey.parse(W[3])
    assert p.groups == (
        PolicyGroup("X-witnesses", 2, ("X1", "X2", "X3")),
        PolicyGroup("Y-witnesses", 1, ("Y1", "Y2", "Y3")),
        PolicyGroup("X-and-Y", 2, ("X-witnesses", "Y-witnesses")),
    )
    assert p.quorum == "X-and-Y"
    assert p.witness_keys == tuple(WitnessKey.parse(v) for v in W[1:7])


def test_the_log_vkey_is_the_staging_trust_roots_key() -> None:
    root = json.loads((FIXTURES / "trust" / "trusted_root.staging.json").read_text())
    (tlog,) = [t for t in root["tlogs"] if "alpha3" in t["baseUrl"]]
    der = base64.b64decode(tlog["publicKey"]["rawBytes"])
    assert Policy.parse(f"log {LOG_VKEY}\nquorum none\n", "p").logs[0].public_key == der[-32:]


@pytest.mark.parametrize(
    ("cosigned", "ok"),
    [
        ({"X1", "X2", "Y1"}, True),
        ({"X1", "X3", "Y3"}, True),
        ({"X1", "X2", "X3", "Y1", "Y2", "Y3"}, True),
        ({"X1", "X2"}, False),
        ({"X1", "Y1", "Y2", "Y3"}, False),
        (set(), False),
        # group names and unknown names are not witnesses
        ({"X-witnesses", "Y-witnesses", "X-and-Y"}, False),
        ({"X1", "X2", "Y-witnesses"}, False),
    ],
)
def test_nested_groups(cosigned: set[str], ok: bool) -> None:
    p = Policy.parse(SIGSUM_STYLE, "sigsum.policy")
    assert p.satisfied(cosigned) is ok
    assert (p.missing(cosigned) is None) is ok


def test_what_is_missing_is_described() -> None:
    p = Policy.parse(SIGSUM_STYLE, "sigsum.policy")
    assert p.missing({"X1"}) == (
        "all 2 of group 'X-and-Y' needed, 0 met; "
        "2 of group 'X-witnesses' needed, 1 cosigned (X1); "
        "1 of group 'Y-witnesses' needed, 0 cosigned"
    )
    assert p.missing({"X1", "X3", "Y2"}) is None
    single = Policy.parse(f"witness A {W[1]}\nquorum A\n", "p")
    assert single.missing(()) == "witness 'A' has not cosigned"
    assert single.missing(["A"]) is None


def test_quorum_none_needs_no_witnesses() -> None:
    p = Policy.parse("quorum none\n", "p")
    assert (p.logs, p.witnesses, p.groups, p.quorum) == ((), (), (), "none")
    assert p.satisfied(())
    with_witness = Policy.parse(f"witness A {W[1]}\nquorum none", "p")  # no final newline
    assert with_witness.satisfied([])


# --- the real checkpoint ---------------------------------------------------------------------

STAGING_POLICY = f"""\
log {LOG_VKEY}
witness mullvad {STAGING[0]}
witness trustfabric {STAGING[1]} https://staging.witness.transparency.goog/ring-any-bells
witness geomys {STAGING[2]}
group staging 2 mullvad trustfabric geomys
quorum staging
"""


def test_real_checkpoint_meets_two_of_three_staging_witnesses() -> None:
    p = Policy.parse(STAGING_POLICY, "staging.policy")
    cosigs = verify_note_cosignatures(CHECKPOINT, p.witness_keys, now=1778700214 + 60)
    cosigned = p.cosigned_by(cosigs)
    assert cosigned == {"mullvad", "trustfabric", "geomys"}
    assert p.satisfied(cosigned)
    for dropped in cosigned:
        assert p.satisfied(cosigned - {dropped})
        for second in cosigned - {dropped}:
            rest = cosigned - {dropped, second}
            assert not p.satisfied(rest)
            assert (
                p.missing(rest) == f"2 of group 'staging' needed, 1 cosigned ({next(iter(rest))})"
            )
    every = Policy.parse(STAGING_POLICY.replace("staging 2", "staging all"), "p")
    assert every.satisfied(cosigned)
    assert not every.satisfied(cosigned - {"geomys"})


def test_an_invalid_cosignature_does_not_count() -> None:
    p = Policy.parse(STAGING_POLICY, "staging.policy")
    origin, size, rest = CHECKPOINT.split("\n", 2)
    forged = f"{origin}\n{int(size) + 1}\n{rest}"  # cosignatures no longer match the body
    assert p.cosigned_by(verify_note_cosignatures(forged, p.witness_keys)) == frozenset()
    # a witness configured under another key is not cosigning, whatever its line's name
    other = Policy.from_keys([vkey_of("witness.stagemole.eu", 99), *STAGING[1:]], 3, "inline")
    cosigned = other.cosigned_by(verify_note_cosignatures(CHECKPOINT, other.witness_keys))
    assert not other.satisfied(cosigned)
    assert other.missing(cosigned) == (
        f"all 3 of group {INLINE_GROUP!r} needed, 2 cosigned "
        "(staging.witness.transparency.goog/ring-any-bells, witness.navigli.sunlight.geomys.org)"
    )


def test_inline_keys_and_quorum() -> None:
    p = Policy.from_keys(STAGING, 2, "witnesses")
    assert [w.name for w in p.witnesses] == [WitnessKey.parse(v).name for v in STAGING]
    cosigned = p.cosigned_by(verify_note_cosignatures(CHECKPOINT, p.witness_keys))
    assert p.satisfied(cosigned)
    assert not p.satisfied(list(cosigned)[:1])
    assert Policy.from_keys(STAGING, 0, "w").quorum == "none"
    assert Policy.from_keys([], 0, "w").satisfied([])


@pytest.mark.parametrize(
    ("vkeys", "quorum", "message"),
    [
        (STAGING, 4, "witnesses: quorum 4 is out of range: 3 witness keys are configured"),
        (STAGING, -1, "quorum -1 is out of range"),
        ([], 1, "quorum 1 is out of range: 0 witness keys"),
        (STAGING, True, "quorum must be a whole number"),
        (
            [*STAGING, STAGING[1]],
            2,
            "key 4 ('staging.witness.transparency.goog/ring-any-bells') has the same key as key 2",
        ),
        (
            [STAGING[0], vkey_of("witness.stagemole.eu", 7)],
            1,
            "key 2 ('witness.stagemole.eu') has the same name as key 1",
        ),
        ([STAGING[0], STAGING[1][:-2]], 1, "witnesses: key 2: verifier key"),
    ],
)
def test_inline_errors(vkeys: list[str], quorum: int, message: str) -> None:
    with pytest.raises(WitnessConfigError, match=None) as err:
        Policy.from_keys(vkeys, quorum, "witnesses")
    assert message in str(err.value)


# --- errors, each with its line --------------------------------------------------------------

OTHER_LOG = vkey_of("other.example/log", 50, type_byte=0x01)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("frobnicate x\nquorum none\n", 1, "unknown keyword 'frobnicate'"),
        ("quorum none\nwitness\n", 2, "witness line needs a name and a key"),
        ("witness A\n", 1, "needs a name and a key"),
        ("witness A w.example+00000000+AAAA\nquorum A\n", 1, "verifier key 'w.example'"),
        (f"witness A {W[1][:-1]}\n", 1, "not valid base64"),
        (f"witness A {W[1]} https://a.example extra\n", 1, "unexpected 'extra' after the URL"),
        (
            f"witness A {W[1]}\nwitness A {W[2]}\n",
            2,
            "duplicate name 'A' (already defined on line 1)",
        ),
        (f"witness A {W[1]}\ngroup A any A\n", 2, "duplicate name 'A'"),
        (f"witness A {W[1]}\n# c\nwitness B {W[1]}\n", 3, "same key as witness 'A' (line 1)"),
        (f"witness none {W[1]}\n", 1, "cannot be named 'none'"),
        (f"witness A {OTHER_LOG}\n", 1, "a log's Ed25519 key, not a witness key"),
        (f"log {W[1]}\n", 1, "log keys must be Ed25519 (type 0x01, 32 bytes), not type 0x04"),
        (f"log {OTHER_LOG}\nlog {OTHER_LOG}\n", 2, "duplicates the key of log"),
        ("log\n", 1, "log line has no key"),
        (f"log {OTHER_LOG} https://l.example x\n", 1, "unexpected 'x'"),
        (f"witness A {W[1]}\ngroup G any A B\n", 2, "unknown member 'B'"),
        (f"witness A {W[1]}\ngroup G any A G\n", 2, "group 'G' lists itself (a cycle)"),
        (
            f"witness A {W[1]}\ngroup G any A H\ngroup H any G\n",
            2,
            "'H' is defined only later, on line 3",
        ),
        (f"witness A {W[1]}\ngroup G any A A\n", 2, "member 'A' is listed twice"),
        (f"witness A {W[1]}\ngroup G any A none\n", 2, "'none' cannot be a group member"),
        (f"witness A {W[1]}\ngroup none any A\n", 2, "cannot be named 'none'"),
        (f"witness A {W[1]}\ngroup G any\n", 2, "needs a name, a threshold and members"),
        (f"witness A {W[1]}\ngroup G 0 A\n", 2, "threshold 0 of group 'G' is out of range"),
        (
            f"witness A {W[1]}\ngroup G 2 A\n",
            2,
            "threshold 2 of group 'G' is out of range: it has 1",
        ),
        (f"witness A {W[1]}\ngroup G most A\n", 2, "threshold 'most' is not a number"),
        (f"witness A {W[1]}\ngroup G -1 A\n", 2, "threshold '-1' is not a number"),
        (f"witness A {W[1]}\n", None, "policy has no quorum line"),
        ("", None, "policy has no quorum line"),
        ("quorum A\n", 1, "quorum names 'A': no witness or group of that name"),
        (f"quorum A\nwitness A {W[1]}\n", 1, "quorum 'A' is defined only later, on line 2"),
        ("quorum none\nquorum none\n", 2, "second quorum line (the first is on line 1)"),
        ("quorum\n", 1, "quorum line needs exactly one name"),
        ("quorum a b\n", 1, "quorum line needs exactly one name"),
        ("quorum none\r\n", 1, "control character 0x0d is not allowed (CRLF line endings?)"),
        ("# ok\nquorum\x0bnone\n", 2, "control character 0x0b"),
        ("quorum none\x7f\n", 1, "control character 0x7f"),
    ],
)
def test_errors_name_the_line(text: str, line: int | None, message: str) -> None:
    with pytest.raises(WitnessConfigError) as err:
        Policy.parse(text, "my.policy")
    assert err.value.line == line
    assert err.value.source == "my.policy"
    where = f"my.policy:{line}: " if line else "my.policy: "
    assert str(err.value).startswith(where)
    assert message in str(err.value)


def test_names_are_opaque_and_only_space_and_tab_separate() -> None:
    # a no-break space is part of a name, not a separator; non-ASCII names are fine
    p = Policy.parse(f"witness t\u00e9moin\u00a0A {W[1]}\nquorum t\u00e9moin\u00a0A\n", "p")
    assert p.witnesses[0].name == "t\u00e9moin\u00a0A"
    assert p.satisfied(["t\u00e9moin\u00a0A"])
    assert not p.satisfied(["t\u00e9moin A"])


def test_size_limits() -> None:
    with pytest.raises(WitnessConfigError, match="larger than"):
        Policy.parse("#" * (1 << 20) + "\nquorum none\n", "p")
    many = "".join(f"group G{i} any A\n" for i in range(257))
    with pytest.raises(WitnessConfigError, match="more than 256 groups") as err:
        Policy.parse(f"witness A {W[1]}\n{many}quorum none\n", "p")
    assert err.value.line == 258


# --- random policies against a reference evaluation ------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, list[str]]], str, set[str]]:
    """Policy text, its groups in order, the quorum and a set of cosigning witnesses."""
    n = draw(st.integers(1, 8))
    names = [f"w{i}" for i in range(n)]
    lines = [f"witness {name} {W[i]}" for i, name in enumerate(names)]
    groups: list[tuple[str, int, list[str]]] = []
    for g in range(draw(st.integers(0, 6))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
        k = draw(st.integers(1, len(members)))
        spelled = draw(
            st.sampled_from(
                [str(k)] + (["any"] if k == 1 else []) + (["all"] if k == len(members) else [])
            )
        )
        groups.append((f"g{g}", k, members))
        lines.append(f"group g{g} {spelled} {' '.join(members)}")
        names.append(f"g{g}")
    quorum = draw(st.sampled_from([*names, "none"]))
    lines.append(f"quorum {quorum}")
    cosigned = draw(st.sets(st.sampled_from([f"w{i}" for i in range(n)])))
    return "\n".join(lines) + "\n", groups, quorum, cosigned


def reference(groups: list[tuple[str, int, list[str]]], quorum: str, cosigned: set[str]) -> bool:
    """One pass in definition order: every member is defined before the group naming it."""
    met = set(cosigned)
    for name, k, members in groups:
        if sum(m in met for m in members) >= k:
            met.add(name)
    return quorum == "none" or quorum in met


@settings(max_examples=200, deadline=None)
@given(policies())
def test_random_policies_match_the_reference(
    case: tuple[str, list[tuple[str, int, list[str]]], str, set[str]],
) -> None:
    text, groups, quorum, cosigned = case
    p = Policy.parse(text, "random")
    expected = reference(groups, quorum, cosigned)
    assert p.satisfied(cosigned) is expected
    assert (p.missing(cosigned) is None) is expected
    # more cosignatures never break a quorum
    if expected:
        assert p.satisfied(cosigned | {f"w{i}" for i in range(len(p.witnesses))})
