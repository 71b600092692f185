"""The documentation's configurations: the GitHub-organisation example passes check-config
and judges entries as it says, and every YAML snippet is a valid configuration."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.config import load_settings, parse_settings
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    SanType,
    Signer,
    SigningRecord,
    Subject,
    SubjectAltName,
)
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.engine import RuleEngine
from tests.docs_support import DOCS, MARKDOWN, SECRET, fences, rel
from tools import config_reference as reference

# ----------------------------------------------------------------------------- the GitHub example


def _environment(text: str) -> dict[str, str]:
    """A value for every ``X_env: NAME`` of a YAML text, of the shape X needs."""
    values = {
        "sha256": hashlib.sha256(b"a token").hexdigest(),
        "secret": SECRET,
        "url": "https://hooks.example.com/services/T0/B0/XYZ",
        "password": "correct horse",
        "routing_key": "R0UT1NGK3Y",
    }
    return {name: values[field] for field, name in re.findall(r"(\w+)_env: ([A-Za-z_][\w]*)", text)}


def github_example() -> str:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    after = text.split("<!-- github-org-example -->", 1)[1]
    (block,) = fences(after, "yaml")[:1]
    return block


def test_the_github_example_passes_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = github_example()
    assert block == reference.GITHUB_ORG_EXAMPLE
    path = tmp_path / "acme.yaml"
    path.write_text(block, encoding="utf-8")
    environ = _environment(block)
    assert set(environ) == {
        "TLOG_DB_PASSWORD",
        "SOC_TOKEN_SHA256",
        "PROMETHEUS_TOKEN_SHA256",
        "SOC_WEBHOOK_SECRET",
        "PAGERDUTY_ROUTING_KEY",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), out
    assert out.startswith(f"config: {path}: OK\n")
    assert "rules: 4" in out.splitlines()
    for value in environ.values():
        assert value not in out


GHA = "https://token.actions.githubusercontent.com"
ACME_ID = "4242421"
RELEASE_KEY = "sha256:0ab6e1a64c8e4fb0e0c3cf1ea4a9a6f8e7f2b11e8a5e0e5c1d93f7c0b4a2d6e1"


def _ext(name: str, value: str) -> CertExtension:
    return CertExtension(FULCIO_EXTENSION_OIDS[name], name, value)


def gha(
    *,
    repo: str = "acme/app",
    workflow: str = "release.yml",
    ref: str = "refs/tags/v1.4.2",
    runner: str = "github-hosted",
    owner_id: str = ACME_ID,
    chain: ChainStatus = ChainStatus.VERIFIED,
) -> CertificateSigner:
    """A Fulcio certificate of a GitHub Actions workflow run, as the parser reads it."""
    owner = repo.split("/", maxsplit=1)[0]
    san = f"https://github.com/{repo}/.github/workflows/{workflow}@{ref}"
    exts = {
        "issuer": GHA,
        "build-signer-uri": san,
        "runner-environment": runner,
        "source-repository-uri": f"https://github.com/{repo}",
        "source-repository-ref": ref,
        "source-repository-owner-uri": f"https://github.com/{owner}",
        "source-repository-owner-identifier": owner_id,
    }
    return _cert(SubjectAltName(SanType.URI, san), GHA, exts, chain)


def _cert(
    san: SubjectAltName, issuer: str, exts: dict[str, str], chain: ChainStatus
) -> CertificateSigner:
    return CertificateSigner(
        sans=(san,),
        issuer=issuer,
        extensions=tuple(_ext(k, v) for k, v in exts.items()),
        serial="01",
        not_before=datetime(2025, 6, 1, tzinfo=UTC),
        not_after=datetime(2025, 6, 1, 0, 10, tzinfo=UTC),
        issuer_dn="O=sigstore.dev, CN=sigstore-intermediate",
        subject_dn="",
        fingerprint="sha256:" + "c0" * 32,
        key=KeySigner("ecdsa", "sha256:" + "d1" * 32, 256, "P-256"),
        chain=chain,
    )


def record(signer: Signer, *, image: str | None = None) -> SigningRecord:
    subjects = (Subject(image, (Digest("sha256", "ab" * 32),)),) if image else ()
    return SigningRecord(
        log="rekor",
        index=7,
        kind="intoto" if image else "hashedrekord",
        api_version="0.0.2" if image else "0.0.1",
        signers=(signer,),
        artifact_digests=() if image else (Digest("sha256", "ef" * 32),),
        subjects=subjects,
    )


def judged(engine: RuleEngine, rec: SigningRecord) -> dict[str, tuple[str, set[str]]]:
    """Rule -> (finding kind, the expect fields it failed)."""
    return {str(f.rule): (str(f.kind), {u.field for u in f.unmet}) for f in engine.evaluate(rec)}


def test_the_github_example_judges_entries_as_it_says(tmp_path: Path) -> None:
    block = github_example()
    path = tmp_path / "acme.yaml"
    path.write_text(block, encoding="utf-8")
    engine = RuleEngine.compile(load_settings(path, environ=_environment(block)).rules)
    expected = ("expected_use", set[str]())

    assert judged(engine, record(gha())) == {"acme-workflows": expected}
    assert judged(engine, record(gha(workflow="debug.yml", ref="refs/heads/patch-1"))) == {
        "acme-workflows": (
            "unexpected_signer",
            {"ext:build-signer-uri", "ext:source-repository-ref"},
        )
    }
    assert judged(engine, record(gha(runner="self-hosted"))) == {
        "acme-workflows": ("unexpected_signer", {"ext:runner-environment"})
    }
    # the organisation's name, registered again by someone else after a rename
    assert judged(engine, record(gha(owner_id="9999999"))) == {
        "acme-workflows": ("unexpected_signer", {"ext:source-repository-owner-identifier"})
    }
    # a certificate made to look like Fulcio's, that does not chain to it
    assert judged(engine, record(gha(chain=ChainStatus.UNTRUSTED))) == {
        "acme-workflows": ("unexpected_signer", {"fulcio_chain"})
    }
    # the image, attested by the release workflow, then by another organisation's workflow
    assert judged(engine, record(gha(), image="ghcr.io/acme/app")) == {
        "acme-workflows": expected,
        "acme-images": expected,
    }
    stranger = gha(repo="mallory/tools", workflow="build.yml", owner_id="1")
    assert judged(engine, record(stranger, image="ghcr.io/acme/app")) == {
        "acme-images": (
            "unexpected_signer",
            {"ext:source-repository-owner-identifier", "ext:build-signer-uri"},
        )
    }
    # any use of the release key
    key = KeySigner("ecdsa", RELEASE_KEY, 256, "P-256")
    assert judged(engine, record(key)) == {"acme-release-key": ("watched_use", set())}
    # a maintainer's address, verified by Google, then by another identity provider
    google = _cert(
        SubjectAltName(SanType.EMAIL, "ana@acme.com"),
        "https://accounts.google.com",
        {"issuer": "https://accounts.google.com"},
        ChainStatus.VERIFIED,
    )
    assert judged(engine, record(google)) == {"acme-maintainers": expected}
    other = replace(google, issuer="https://github.com/login/oauth")
    assert judged(engine, record(other)) == {"acme-maintainers": ("unexpected_signer", {"issuer"})}
    # nothing of acme's
    assert judged(engine, record(gha(repo="other/app", owner_id="5"))) == {}


def yaml_snippets() -> Iterator[Any]:
    for path in MARKDOWN:
        for n, block in enumerate(fences(path.read_text(encoding="utf-8"), "yaml")):
            where = f"{rel(path)}, YAML block {n + 1}"
            yield pytest.param(where, block, id=where)


MINIMAL_LOGS = [{"name": "rekor", "api": "v1", "url": "https://rekor.sigstore.dev"}]


@pytest.mark.parametrize(("where", "block"), list(yaml_snippets()))
def test_every_yaml_snippet_is_a_valid_configuration(where: str, block: str) -> None:
    """Fragments (a `watch:` or a `database:` section) are checked with one log added."""
    doc = yaml.safe_load(block)
    assert isinstance(doc, dict), where
    doc.setdefault("logs", MINIMAL_LOGS)
    parse_settings(yaml.safe_dump(doc, sort_keys=False), where, environ=_environment(block))
