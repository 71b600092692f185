"""The ``witnesses`` section of a log: what is accepted, and each mistake named by file, line,
field and what is wrong (policy or keys, quorum, mode, the vantage points to compare with)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigFileError, load_settings, parse_settings
from monitor.config.witnesses import PeerSettings
from monitor.tlog.cosign import CheckpointCosigner

# a real staging witness
KEY = "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv"
V2 = "  - name: v2\n    api: v2\n    url: https://log2025-1.rekor.sigstore.dev\n"
V1 = "  - name: v1\n    api: v1\n    url: https://rekor.sigstore.dev\n"


def doc(log: str, witnesses: str) -> str:
    return "logs:\n" + log + "    witnesses:\n" + witnesses


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_settings(text, "c.yaml", environ=environ or {})
    return list(info.value.lines)


def test_vantage_points_are_the_distributor_then_compare_with() -> None:
    text = doc(
        V2,
        "      distributor: https://api.transparency.dev\n"
        "      compare_with:\n"
        "        - {url: 'https://witness.example.org/', type: witness}\n"
        "        - {url: 'https://peer.example', type: monitor, log: there, token_env: PEER}\n",
    )
    settings = parse_settings(text, "c.yaml", environ={"PEER": "tlm_read_x"})
    w = settings.logs[0].witnesses
    assert w is not None
    assert w.effective_mode == "off"  # no witnesses to require: only comparisons
    peers = w.peers()
    assert [(p.type, p.url) for p in peers] == [
        ("distributor", "https://api.transparency.dev"),
        ("witness", "https://witness.example.org"),
        ("monitor", "https://peer.example"),
    ]
    assert peers[2].log == "there"
    assert peers[2].token is not None
    assert peers[2].token.get_secret_value() == "tlm_read_x"
    assert "tlm_read_x" not in repr(peers[2])


def test_a_rekor_v1_log_takes_vantage_points_but_no_witness_policy() -> None:
    text = doc(V1, "      compare_with:\n        - {url: 'https://d.example', type: distributor}\n")
    w = parse_settings(text, "c.yaml", environ={}).logs[0].witnesses
    assert w is not None
    assert len(w.peers()) == 1
    # YAML reads an unquoted off as false: it still means off
    text = doc(V1, "      mode: off\n      distributor: https://d.example\n")
    w = parse_settings(text, "c.yaml", environ={}).logs[0].witnesses
    assert w is not None
    assert w.effective_mode == "off"
    bad = doc(V1, f"      keys: [{KEY}]\n      mode: require\n")
    assert errors(bad) == [
        "c.yaml:6: logs[0].witnesses.keys: Rekor v1 checkpoints carry no witness cosignatures: "
        "only distributor applies to a v1 log",
        "c.yaml:7: logs[0].witnesses.mode: Rekor v1 checkpoints carry no witness cosignatures: "
        "only distributor applies to a v1 log",
    ]


@pytest.mark.parametrize(
    ("witnesses", "expected"),
    [
        (
            f"      keys: [{KEY}]\n      policy: 'quorum none'\n",
            ["c.yaml:6: logs[0].witnesses.keys: give policy or keys, not both"],
        ),
        (
            "      quorum: 2\n      mode: warn\n",
            [
                "c.yaml:6: logs[0].witnesses.quorum: applies to keys: a policy says its own quorum",
                "c.yaml:7: logs[0].witnesses.mode: needs the witnesses: give policy, or keys "
                "(or mode: off)",
            ],
        ),
        (
            "      compare_with:\n        - {url: 'https://w.example', type: witness, log: x}\n",
            ["c.yaml:7: logs[0].witnesses.compare_with[0].log: applies to type: monitor only"],
        ),
        (
            "      compare_with:\n        - {url: 'https://w.example', type: gossip}\n",
            [
                "c.yaml:7: logs[0].witnesses.compare_with[0].type: must be 'distributor', "
                "'witness' or 'monitor' (got 'gossip')"
            ],
        ),
        (
            "      compare_with:\n        - {url: 'https://m.example', type: monitor, "
            "token_env: NOT_SET}\n",
            [
                "c.yaml:7: logs[0].witnesses.compare_with[0].token_env: environment variable "
                "NOT_SET is not set"
            ],
        ),
        (
            "      compare_with:\n        - {url: 'ftp://m.example', type: distributor}\n",
            ["c.yaml:7: logs[0].witnesses.compare_with[0].url: "],
        ),
        (
            "      compare_with:\n        - {url: 'http://m.example', type: monitor, token: x}\n",
            [
                "c.yaml:7: logs[0].witnesses.compare_with[0].url: plain http would send the "
                "token in clear: use https"
            ],
        ),
        (
            "      compare_with:\n        - {url: 'https://me:pw@d.example', type: distributor}\n",
            [
                "c.yaml:7: logs[0].witnesses.compare_with[0].url: holds a user name or "
                "password: give token_env"
            ],
        ),
    ],
)
def test_mistakes(witnesses: str, expected: list[str]) -> None:
    found = errors(doc(V2, witnesses))
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got.startswith(want), (got, want)


def test_a_policy_file_is_read_relative_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "policy.txt").write_text(f"witness w {KEY}\nquorum w\n")
    config = tmp_path / "monitor.yaml"
    config.write_text(doc(V2, "      policy: policy.txt\n"))
    w = load_settings(str(config)).logs[0].witnesses
    assert w is not None
    policy = w.load_policy()
    assert policy is not None
    assert [k.name for k in policy.witness_keys] == [KEY.split("+", maxsplit=1)[0]]
    config.write_text(doc(V2, "      policy: missing.txt\n"))
    with pytest.raises(ConfigFileError) as info:
        load_settings(str(config))
    (line,) = info.value.lines
    assert "logs[0].witnesses.policy" in line
    assert "missing.txt: no such file" in line


def test_peer_settings_need_a_type() -> None:
    with pytest.raises(ValueError, match="type"):
        PeerSettings.model_validate({"url": "https://x.example"})


def test_the_cosigning_key_is_checked_at_start_and_its_verifier_key_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = CheckpointCosigner.generate("monitor.acme.example")
    (tmp_path / "cosign.key").write_text(key.private_text() + "\n")
    config = tmp_path / "monitor.yaml"
    config.write_text(doc(V2, "      mode: off\n") + "server:\n  cosign_key: cosign.key\n")
    settings = load_settings(str(config))
    assert settings.server.cosign_key == str(tmp_path / "cosign.key")
    trust = "trust:\n  trusted_root: default\n  signing_config: default\n"
    config.write_text(trust + config.read_text())
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"server: cosigns published checkpoints as {key.vkey()}" in out
    assert "PRIVATE+KEY" not in out
    # a key that is not one: named by file, line and field, never quoted
    (tmp_path / "cosign.key").write_text("PRIVATE+KEY+m+00000000+" + "A" * 44 + "\n")
    with pytest.raises(ConfigFileError) as info:
        load_settings(str(config))
    (line,) = info.value.lines
    assert "server.cosign_key: " in line
    assert "cosign.key: is not an Ed25519 signed-note key" in line
    assert "AAAA" not in line
