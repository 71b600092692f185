"""The ``images:`` section: repositories normalised as the reference grammar reads them,
credentials only from the environment, the watch rules' selectors and severities, plain HTTP
only on loopback, and every mistake named by file, line and field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.config import ConfigFileError, ImageSettings, parse_settings
from monitor.core.findings import Severity
from monitor.core.imageref import Repository

LOGS = "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"


def _images(text: str, environ: dict[str, str] | None = None) -> tuple[ImageSettings, ...]:
    return parse_settings(LOGS + text, "c.yaml", environ=environ or {}).images


def _errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_settings(LOGS + text, "c.yaml", environ=environ or {})
    return list(info.value.lines)


def test_no_images_by_default() -> None:
    assert _images("") == ()
    assert _images("images:\n") == ()


def test_an_entry_with_everything() -> None:
    (image,) = _images(
        "images:\n"
        "  - repository: ghcr.io/acme/app\n"
        "    tags: ['v*', latest]\n"
        "    username_env: REG_USER\n"
        "    password_env: REG_PASS\n"
        "    poll_interval: 90s\n"
        "    expect:\n"
        "      issuer: https://token.actions.githubusercontent.com\n"
        "      san: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*'\n"
        "    require: both\n"
        "    severity: critical\n"
        "    grace: 30m\n",
        {"REG_USER": "ci-bot", "REG_PASS": "hunter2"},
    )
    assert image.repository == "ghcr.io/acme/app"
    assert image.repo == Repository("ghcr.io", "acme/app")
    assert image.tags == ("v*", "latest")
    assert image.username is not None
    assert image.username.get_secret_value() == "ci-bot"
    assert image.password is not None
    assert image.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(image)
    assert image.token is None
    assert image.poll_interval == timedelta(seconds=90)
    assert image.expect is not None
    assert [name for name, _ in image.expect.fields] == ["issuer", "san"]
    assert image.require == "both"
    assert image.severity is Severity.CRITICAL
    assert image.grace == timedelta(minutes=30)
    assert image.insecure_http is False


def test_defaults_and_normalised_repositories() -> None:
    hub, short, local, token = _images(
        "images:\n"
        "  - repository: alpine\n"
        "  - repository: acme/app\n"
        "  - {repository: 'localhost:5000/acme/app', insecure_http: true}\n"
        "  - {repository: 'index.docker.io/acme/tool', token_env: REG_TOKEN}\n",
        {"REG_TOKEN": "tok"},
    )
    assert hub.repository == "docker.io/library/alpine"
    assert short.repository == "docker.io/acme/app"
    assert local.repo == Repository("localhost:5000", "acme/app")
    assert local.insecure_http
    assert token.repository == "docker.io/acme/tool"
    assert token.token is not None
    assert token.token.get_secret_value() == "tok"
    assert hub.tags is None  # every tag
    assert hub.poll_interval == timedelta(minutes=5)
    assert hub.grace == timedelta(hours=1)
    assert hub.require == "signature"
    assert hub.severity is Severity.HIGH
    assert hub.expect is None
    assert hub.username is None
    assert hub.password is None
    assert hub.token is None


def test_bad_entries_are_named_by_line_and_field() -> None:
    errors = _errors(
        "images:\n"
        "  - repository: ghcr.io/Acme/app\n"  # 4
        "    tags: ['v 1', 'v*', 'v*']\n"
        "    require: sometimes\n"
        "    poll_interval: 1s\n"
        "    severity: dire\n"
        "    grace: 60d\n"
        "    colour: blue\n"
        "  - repository: ghcr.io/acme/app:v1\n"  # 11
        "  - repository: ghcr.io/acme/x\n"  # 12
        "    insecure_http: true\n"
        "    expect:\n"
        "      san: {regex: '('}\n"
    )
    assert errors == [
        "c.yaml:4: images[0].repository: 'Acme/app' is not a repository name (lowercase "
        "components of letters and digits, separated by '/', '.', '_', '__' or '-')",
        "c.yaml:5: images[0].tags[0]: 'v 1' is not a tag glob (letters, digits, '_', '.', '-' "
        "and the glob's '*', '?', '[...]')",
        "c.yaml:6: images[0].require: must be 'signature', 'attestation' or 'both' "
        "(got 'sometimes')",
        "c.yaml:7: images[0].poll_interval: must be at least 10s",
        "c.yaml:8: images[0].severity: unknown severity 'dire'; one of info, low, medium, high, "
        "critical",
        "c.yaml:9: images[0].grace: must be at most 30d",
        "c.yaml:10: images[0].colour: unknown option; the options here are expect, grace, "
        "insecure_http, password, password_env, poll_interval, repository, require, severity, "
        "tags, token, token_env, username, username_env",
        "c.yaml:11: images[1].repository: a repository, without a tag or digest (list tags "
        "under tags:)",
        "c.yaml:13: images[2].insecure_http: plain HTTP only for a registry on loopback, not "
        "ghcr.io",
        "c.yaml:15: images[2].expect.san.regex: invalid regular expression '(': missing ): (?:()",
    ]
    assert _errors("images:\n  - {repository: ghcr.io/acme/app, tags: ['v*', latest, 'v*']}\n") == [
        "c.yaml:4: images[0].tags: lists a value twice"
    ]


def test_credentials_come_from_the_environment_only() -> None:
    errors = _errors(
        "images:\n"
        "  - repository: ghcr.io/acme/a\n"  # 4
        "    username_env: REG_USER\n"
        "    password: hunter2\n"
        "  - repository: ghcr.io/acme/b\n"  # 7
        "    token: abc\n"
        "  - repository: ghcr.io/acme/c\n"  # 9
        "    username_env: REG_USER\n"
        "  - repository: ghcr.io/acme/d\n"  # 11
        "    token_env: REG_TOKEN\n"
        "    username_env: REG_USER\n"
        "    password_env: REG_PASS\n",
        {"REG_USER": "u", "REG_PASS": "p"},
    )
    assert errors == [
        "c.yaml:6: images[0].password: keep the secret out of the file: set password_env instead",
        "c.yaml:8: images[1].token: keep the secret out of the file: set token_env instead",
        "c.yaml:9: images[2].password_env: basic credentials need username_env and password_env",
        "c.yaml:12: images[3].token_env: environment variable REG_TOKEN is not set",
        "c.yaml:12: images[3].token_env: give token_env or username_env/password_env, not both",
    ]
    assert not any("hunter2" in e or "abc" in e for e in errors)


def test_the_same_repository_twice() -> None:
    errors = _errors(
        "images:\n"
        "  - repository: docker.io/library/alpine\n"
        "  - repository: alpine\n"
        "  - repository: ghcr.io/acme/app\n"
        "    tags: [latest]\n"
        "  - repository: ghcr.io/acme/app\n"
    )
    assert errors == [
        "c.yaml:5: images[1].repository: duplicate repository: images[0] has it too",
        "c.yaml:8: images[3].repository: duplicate repository: images[2] has it too",
    ]


def test_images_must_be_a_list_of_mappings() -> None:
    assert _errors("images: ghcr.io/acme/app\n") == ["c.yaml:3: images: must be a list"]
    assert _errors("images:\n  - ghcr.io/acme/app\n") == [
        "c.yaml:4: images[0]: must be a mapping (key: value)"
    ]
    assert _errors("images:\n  - {tags: [x]}\n") == [
        "c.yaml:4: images[0].repository: required but missing"
    ]


RULE = (
    "watch:\n  - name: release\n    match: {san: 'https://github.com/acme/*'}\n    severity: high\n"
)
IMAGES = "images:\n  - repository: ghcr.io/acme/app\n"


def test_a_rule_opts_in_to_orphans_with_a_grace() -> None:
    settings = parse_settings(LOGS + IMAGES + RULE + "    orphans: {grace: 2h}\n", "c.yaml")
    (rule,) = settings.watch
    assert rule.orphans is not None
    assert rule.orphans.grace == timedelta(hours=2)
    settings = parse_settings(LOGS + IMAGES + RULE + "    orphans: {}\n", "c.yaml")
    assert settings.watch[0].orphans is not None
    assert settings.watch[0].orphans.grace == timedelta(hours=1)
    assert parse_settings(LOGS + IMAGES + RULE, "c.yaml").watch[0].orphans is None


@pytest.mark.parametrize(
    ("orphans", "message"),
    [
        ("{grace: 10s}", "at least 1m"),
        ("{grace: 60d}", "at most 30d"),
        ("{grace: soon}", "not a duration"),
        ("{grace: 1h, after: 2h}", "after"),
    ],
)
def test_a_bad_orphan_grace_is_named(orphans: str, message: str) -> None:
    errors = _errors(IMAGES + RULE + f"    orphans: {orphans}\n")
    assert any("watch[0].orphans" in e and message in e for e in errors), errors


def test_orphans_need_a_watched_registry() -> None:
    errors = _errors(RULE + "    orphans: {grace: 1h}\n")
    assert any("watch[0].orphans" in e and "needs an images section" in e for e in errors), errors
