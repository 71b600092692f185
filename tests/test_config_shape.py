"""Configuration: the shape from issue 5 read as it is, its secret from the environment,
and settings that cannot be changed once read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pydantic
import pytest

from monitor.config import load_settings
from monitor.core.errors import ConfigError
from monitor.core.findings import Severity
from monitor.rules.spec import PatternKind, RuleSpec
from tests.config_support import SECRET, SECRET_ENV_LINE, TOKEN_HASH


def test_issue_shape_is_accepted_as_it_is(
    issue_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOC_WEBHOOK_SECRET", SECRET)
    settings = load_settings(issue_file)

    assert settings.trust.trusted_root == "default"
    assert settings.trust.signing_config == "default"
    assert settings.trust.refresh == "none"

    rekor, v2 = settings.logs
    assert (rekor.name, rekor.api, rekor.url, rekor.start) == (
        "rekor",
        "v1",
        "https://rekor.sigstore.dev",
        "tip",
    )
    assert rekor.poll_interval == timedelta(seconds=30)
    assert rekor.requests_per_second == 8.0
    assert rekor.discover is False
    assert (v2.name, v2.api, v2.url, v2.discover, v2.start) == (
        "rekor-v2",
        "v2",
        None,
        True,
        "resume",
    )

    # relative to the file's directory
    assert settings.database.url == f"sqlite+aiosqlite:///{issue_file.parent}/data/monitor.db"
    assert settings.database.password is None
    assert (settings.server.listen.host, settings.server.listen.port) == ("127.0.0.1", 9464)
    (token,) = settings.server.tokens
    assert token.name == "responders"
    assert token.scopes == ("read", "write")
    assert token.digest() == bytes.fromhex(TOKEN_HASH)

    rules = settings.rules
    assert all(isinstance(r, RuleSpec) for r in rules)
    assert [(r.name, r.severity) for r in rules] == [
        ("acme-release-signing", Severity.HIGH),
        ("maintainer-emails", Severity.MEDIUM),
        ("offline-root-key", Severity.CRITICAL),
        ("app-image", Severity.HIGH),
    ]
    release, emails, key, image = rules
    assert release.match.field_names() == ("ext:source-repository-owner-uri",)
    assert release.expect is not None
    assert release.expect.field_names() == ("issuer", "san", "ext:runner-environment")
    assert dict(release.expect.fields)["san"][0].kind is PatternKind.GLOB
    assert emails.expect is None
    (san,) = emails.match.fields
    assert [(p.kind, p.text) for p in san[1]] == [
        (PatternKind.GLOB, "*@acme.com"),
        (PatternKind.REGEX, r"ops-[a-z]+@acme\.io"),
    ]
    assert key.match.field_names() == ("key_fingerprint",)
    assert key.expect is None
    assert image.match.field_names() == ("subject",)
    assert image.expect is not None
    assert image.expect.field_names() == ("san",)
    assert settings.watch[0].alert_expected_use is False

    (sink,) = settings.alerts.sinks
    assert (sink.name, sink.type, sink.min_severity) == ("soc", "webhook", Severity.MEDIUM)
    assert sink.endpoint() == "https://soc.example.com/hooks/tlog"
    assert sink.host == "soc.example.com"
    assert sink.secret is not None
    assert sink.secret.get_secret_value() == SECRET
    assert sink.secret_env == "SOC_WEBHOOK_SECRET"
    assert sink.rules is None
    assert sink.kinds is None

    for text in (repr(settings), str(settings)):
        assert SECRET not in text
        assert TOKEN_HASH not in text
        assert "soc.example.com/hooks" not in text


def test_issue_shape_without_the_secret_names_the_field_and_variable(
    issue_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOC_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings(issue_file)
    assert str(info.value) == (
        f"{issue_file}:{SECRET_ENV_LINE}: alerts.sinks[0].secret_env: "
        "environment variable SOC_WEBHOOK_SECRET is not set"
    )


def test_an_empty_variable_is_missing_too(issue_file: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable SOC_WEBHOOK_SECRET is empty"):
        load_settings(issue_file, environ={"SOC_WEBHOOK_SECRET": "  "})


def test_settings_are_frozen(issue_file: Path) -> None:
    settings = load_settings(issue_file, environ={"SOC_WEBHOOK_SECRET": SECRET})
    with pytest.raises(pydantic.ValidationError):
        settings.logs[0].requests_per_second = 100
    with pytest.raises(pydantic.ValidationError):
        settings.watch = ()
