"""Configuration: the shape from issue 5 as it is, the shipped files, secrets from the
environment, every mistake of a file reported at once with its line, and check-config."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest

from monitor.cli import main
from monitor.config import (
    DEFAULT_CONFIG_PATH,
    ConfigFileError,
    LogSettings,
    Settings,
    load_settings,
    parse_settings,
)
from monitor.config.durations import format_duration, parse_duration
from monitor.config.load import load_database_settings
from monitor.config.models import PRODUCTION_TUF_URL
from monitor.core.errors import ConfigError
from monitor.core.findings import FindingKind, Severity
from monitor.logclient.http import HttpPolicy
from monitor.rules.spec import PatternKind, RuleSpec
from monitor.trust import tuf
from tests.conftest import PROD_ROOT, STAGING_ROOT

CONFIG_DIR = Path(__file__).parent.parent / "config"
EXE = Path(sys.executable).parent / "tlog-monitor"
SECRET = "whsec_dGhpcyBpcyB0aGUgc29jIHNlY3JldCwgbG9uZyBlbm91Z2g="
TOKEN_HASH = "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f"

# Verbatim from issue 5, "The shape".
ISSUE_YAML = r"""trust:
  trusted_root: default            # or a path to a TrustedRoot JSON
  signing_config: default          # or a path to a SigningConfig JSON
logs:
  - name: rekor
    url: https://rekor.sigstore.dev
    api: v1
    start: tip                     # tip | resume | an index
    poll_interval: 30s
    requests_per_second: 8
  - name: rekor-v2
    api: v2
    discover: true                 # every v2 shard in the signing config
                                   # (or one shard by `url:`, as for v1)
database:
  url: sqlite+aiosqlite:///data/monitor.db
server:
  listen: 127.0.0.1:9464
  tokens:
    - name: responders
      sha256: e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f  # SHA-256 of the bearer token
      scopes: [read, write]
watch:
  - name: acme-release-signing
    match:
      extensions:
        source-repository-owner-uri: https://github.com/acme
    expect:
      issuer: https://token.actions.githubusercontent.com
      san: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
      extensions:
        runner-environment: github-hosted
    severity: high
  - name: maintainer-emails
    match:
      san: ["*@acme.com", {regex: "ops-[a-z]+@acme\\.io"}]
    severity: medium
  - name: offline-root-key
    match:
      key_fingerprint: sha256:4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139
    severity: critical
  - name: app-image
    match:
      subject: "ghcr.io/acme/app*"
    expect:
      san: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
    severity: high
alerts:
  sinks:
    - name: soc
      type: webhook                # webhook | slack | pagerduty | alertmanager
      url: https://soc.example.com/hooks/tlog
      secret_env: SOC_WEBHOOK_SECRET
      min_severity: medium
"""  # noqa: E501
SECRET_ENV_LINE = ISSUE_YAML.splitlines().index("      secret_env: SOC_WEBHOOK_SECRET") + 1

EXAMPLE_ENV = {
    "SOC_WEBHOOK_SECRET": SECRET,
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/slacksecretpart",
    "PAGERDUTY_ROUTING_KEY": "pagerduty-routing-key-secret",
    "ALERTMANAGER_URL": "http://alertmanager.internal:9093",
    "TLOG_DB_PASSWORD": "database-password-secret",
    "API_TOKEN_SHA256": hashlib.sha256(b"grafana token").hexdigest(),
}
EXAMPLE_SECRETS = [
    SECRET,
    "slacksecretpart",
    "pagerduty-routing-key-secret",
    "database-password-secret",
    EXAMPLE_ENV["API_TOKEN_SHA256"],
    TOKEN_HASH,
]

MINIMAL = "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"


@pytest.fixture
def issue_file(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(ISSUE_YAML)
    return path


def _errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_settings(text, "c.yaml", environ=environ or {})
    return list(info.value.lines)


# --- the shape from issue 5 ---------------------------------------------------------------


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


# --- the shipped files --------------------------------------------------------------------


def test_default_config_loads_as_documented() -> None:
    settings = load_settings(CONFIG_DIR / "monitor.yaml", environ={})
    rekor, v2 = settings.logs
    assert (rekor.api, rekor.url, rekor.start) == ("v1", "https://rekor.sigstore.dev", "tip")
    assert (v2.api, v2.discover, v2.url) == ("v2", True, None)
    # data/ at the top of the repository, whoever reads the file from wherever
    top = CONFIG_DIR.parent.resolve()
    assert settings.database.url == f"sqlite+aiosqlite:///{top}/data/monitor.db"
    assert str(settings.server.listen) == "127.0.0.1:9464"
    assert settings.server.tokens == ()
    assert settings.server.metrics_public
    assert settings.server.health_public
    assert settings.rules == ()
    assert settings.alerts.sinks == ()


def test_example_config_loads_with_its_variables() -> None:
    settings = load_settings(CONFIG_DIR / "monitor.example.yaml", environ=EXAMPLE_ENV)
    assert len(settings.rules) == 4
    assert [s.type for s in settings.alerts.sinks] == [
        "webhook",
        "slack",
        "pagerduty",
        "alertmanager",
    ]
    slack = settings.alerts.sinks[1]
    assert slack.endpoint() == EXAMPLE_ENV["SLACK_WEBHOOK_URL"]
    assert settings.alerts.sinks[2].host == "events.pagerduty.com"
    db = settings.database
    assert db.password is not None
    assert db.password.get_secret_value() == EXAMPLE_ENV["TLOG_DB_PASSWORD"]
    assert db.masked_url() == "postgresql+asyncpg://monitor:***@db.internal:5432/tlog"
    assert db.sqlalchemy_url().password == EXAMPLE_ENV["TLOG_DB_PASSWORD"]
    assert settings.server.tokens[1].digest().hex() == EXAMPLE_ENV["API_TOKEN_SHA256"]
    for text in (repr(settings), str(settings)):
        for secret in EXAMPLE_SECRETS:
            assert secret not in text


def test_example_without_its_variables_names_each_of_them() -> None:
    with pytest.raises(ConfigFileError) as info:
        load_settings(CONFIG_DIR / "monitor.example.yaml", environ={})
    text = str(info.value)
    for variable in EXAMPLE_ENV:
        assert f"environment variable {variable} is not set" in text


def _option_names(model: type[pydantic.BaseModel]) -> Iterator[tuple[str, str]]:
    for name, field in model.model_fields.items():
        yield model.__name__, name
        for sub in _models_in(field.annotation):
            yield from _option_names(sub)


def _models_in(annotation: Any) -> Iterator[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def test_example_documents_every_option() -> None:
    text = (CONFIG_DIR / "monitor.example.yaml").read_text()
    missing = [
        f"{model}.{name}"
        for model, name in _option_names(Settings)
        if not any(f"{before}{name}:" in text for before in (" ", "- ", "`"))
    ]
    assert missing == []


def test_defaults_agree_with_the_code_that_uses_them() -> None:
    log = LogSettings(name="x", api="v1", url="https://rekor.sigstore.dev")
    policy = HttpPolicy()
    assert log.requests_per_second == policy.requests_per_second
    assert log.burst == policy.burst
    assert log.max_concurrency == policy.max_concurrency
    assert log.timeout.total_seconds() == policy.timeout_seconds
    assert PRODUCTION_TUF_URL == tuf.PRODUCTION_TUF_URL
    assert DEFAULT_CONFIG_PATH == "config/monitor.yaml"


# --- every mistake at once, with its line -------------------------------------------------

MISTAKES = r"""trust:
  trusted_root: default
  colour: blue
logs:
  - name: rekor
    url: https://rekor.sigstore.dev
    api: v1
    start: -1
    poll_interval: 30 seconds
    requests_per_second: 0
  - name: rekor-v3
    api: v3
    url: https://example.com
watch:
  - name: a
    match:
      san: ["*@acme.com", {regex: "ops-[a-z+@acme\\.io"}]
    severity: hgih
  - name: a
    match:
      extensions:
        1.3.6.1.4.1.57264.1.12: x
        bogus-ext: y
      nope: z
    severity: low
alerts:
  sinks:
    - name: soc
      type: webhook
      url: https://soc.example.com/hooks/tlog
      secret_env: SOC_WEBHOOK_SECRET
      rules: [a, missing-rule]
      kinds: [health, bogus]
  max_age: forever
"""


def test_every_mistake_is_reported_at_once_with_its_line() -> None:
    errors = _errors(MISTAKES)
    # The rule language words its own messages: their start is checked, not their tail.
    owned_by_rules = {
        5: "c.yaml:17: watch[0].match.san[1].regex: invalid regular expression "
        "'ops-[a-z+@acme\\\\.io': ",
        8: "c.yaml:23: watch[1].match.extensions.bogus-ext: not a Fulcio extension name (",
        9: "c.yaml:24: watch[1].match.nope: unknown field; known fields: san, issuer, ",
    }
    for i, start in owned_by_rules.items():
        assert errors[i].startswith(start)
    assert [e for i, e in enumerate(errors) if i not in owned_by_rules] == [
        "c.yaml:3: trust.colour: unknown option; the options here are refresh, "
        "refresh_interval, signing_config, trusted_root, tuf_cache, tuf_url",
        "c.yaml:8: logs[0].start: must be tip, resume, or a log index (an integer, 0 or more)",
        "c.yaml:9: logs[0].poll_interval: '30 seconds' is not a duration; a duration is a "
        "number of seconds or a string such as 30s, 5m, 1h30m, 7d",
        "c.yaml:10: logs[0].requests_per_second: must be greater than 0",
        "c.yaml:12: logs[1].api: must be 'v1' or 'v2' (got 'v3')",
        "c.yaml:18: watch[0].severity: unknown severity 'hgih'; one of info, low, medium, "
        "high, critical",
        "c.yaml:19: watch[1].name: duplicate rule name: watch[0] has it too",
        "c.yaml:31: alerts.sinks[0].secret_env: environment variable SOC_WEBHOOK_SECRET is not set",
        "c.yaml:32: alerts.sinks[0].rules[1]: no watch rule named 'missing-rule'",
        "c.yaml:33: alerts.sinks[0].kinds[1]: must be 'unexpected_signer', "
        "'unexpected_key_use', 'expected_use', 'watched_use', 'integrity_failure', "
        "'malformed_entry', 'health', 'unwitnessed_checkpoint', 'unsigned_image', "
        "'invalid_signature', 'tlog_mismatch' or 'orphan_signature' (got 'bogus')",
        "c.yaml:34: alerts.max_age: 'forever' is not a duration; a duration is a number of "
        "seconds or a string such as 30s, 5m, 1h30m, 7d",
    ]


def test_the_message_starts_with_the_count_then_one_problem_a_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_settings(MISTAKES, "c.yaml", environ={})
    first, *rest = str(info.value).splitlines()
    assert first == "c.yaml: 14 errors"
    assert rest == list(info.value.lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "logs:\n  - name: r\n    api: v1\n",
            ["c.yaml:2: logs[0].url: required for api: v1"],
        ),
        (
            "logs:\n  - name: r\n    api: v2\n",
            [
                "c.yaml:2: logs[0].url: give url (one shard) or discover: true (every v2 "
                "shard in the signing config)"
            ],
        ),
        (
            "logs:\n  - name: r\n    api: v2\n    url: https://a.example\n    discover: true\n",
            ["c.yaml:5: logs[0].discover: give url (one shard) or discover: true, not both"],
        ),
        (
            "logs:\n  - name: r\n    api: v1\n    discover: true\n",
            ["c.yaml:4: logs[0].discover: is for api: v2 (a Rekor v1 log has one URL)"],
        ),
        (
            MINIMAL + "  - {name: rekor, api: v1, url: 'https://REKOR.sigstore.dev/'}\n",
            [
                "c.yaml:3: logs[1].name: duplicate log name: logs[0] has it too",
                "c.yaml:3: logs[1].url: duplicate log URL: logs[0] has it too",
            ],
        ),
        (
            "logs:\n  - {name: a, api: v2, discover: true}\n  - {name: b, api: v2, discover: "
            "true}\n",
            ["c.yaml:3: logs[1].discover: logs[0] already discovers v2 shards"],
        ),
        (
            "logs:\n  - {name: r, api: v1, url: 'https://r.example', retention: 30d}\n",
            ["c.yaml:2: logs[0].retention: applies to index_all rows: set index_all: true"],
        ),
        (
            "logs:\n  - {name: r, api: v1, url: 'https://r.example', requests_per_second: 500}\n",
            ["c.yaml:2: logs[0].requests_per_second: must be less than or equal to 100"],
        ),
        (
            "logs:\n  - {name: 'r w', api: v1, url: 'ftp://r.example', start: 1.5}\n",
            [
                "c.yaml:2: logs[0].name: a name starts with a letter or digit and has only "
                "letters, digits, '.', '_' and '-' (at most 63 characters)",
                "c.yaml:2: logs[0].url: must be an http(s) URL with a host, such as "
                "https://host/path",
                "c.yaml:2: logs[0].start: must be tip, resume, or a log index (an integer, 0 "
                "or more)",
            ],
        ),
        ("logs: []\n", ["c.yaml:1: logs: list at least one log to monitor"]),
        ("watch: []\n", ["c.yaml:1: logs: required but missing"]),
        ("logs:\n  - rekor\n", ["c.yaml:2: logs[0]: must be a mapping (key: value)"]),
        (MINIMAL + "alert: {}\n", ["c.yaml:3: alert: unknown option (did you mean alerts?)"]),
        (
            MINIMAL + "server:\n  listen: 9464\n  max_page_size: 0\n",
            [
                "c.yaml:4: server.listen: must be host:port, such as 127.0.0.1:9464 or [::1]:9464",
                "c.yaml:5: server.max_page_size: must be greater than or equal to 1",
            ],
        ),
        (
            MINIMAL + "server:\n  tokens:\n    - {name: t, sha256: nothex, scopes: [admin]}\n"
            "    - {name: u}\n",
            [
                "c.yaml:5: server.tokens[0].sha256: must be 64 hexadecimal digits: the SHA-256 "
                "of the bearer token",
                "c.yaml:5: server.tokens[0].scopes[0]: must be 'read' or 'write' (got 'admin')",
                "c.yaml:6: server.tokens[1].sha256: give sha256 (hex SHA-256 of the token) or "
                "sha256_env",
            ],
        ),
        (
            MINIMAL + f"server:\n  tokens:\n    - {{name: t, sha256: {TOKEN_HASH}}}\n"
            f"    - {{name: u, sha256: {TOKEN_HASH.upper()}}}\n",
            ["c.yaml:6: server.tokens[1].sha256: the same hash as tokens[0]: one token, one name"],
        ),
        (
            MINIMAL + "database:\n  url: mysql://u@h/db\n  pool_size: 0\n",
            [
                "c.yaml:4: database.url: must be a SQLite (sqlite+aiosqlite:///path) or "
                "PostgreSQL (postgresql+asyncpg://user@host/db) URL",
                "c.yaml:5: database.pool_size: must be greater than or equal to 1",
            ],
        ),
        (
            MINIMAL + "database:\n  url: 'sqlite+aiosqlite://'\n",
            [
                "c.yaml:4: database.url: SQLite needs a file (sqlite+aiosqlite:///path): not an "
                "in-memory database"
            ],
        ),
        (
            MINIMAL + "database:\n  password: hunter2\n",
            ["c.yaml:4: database.password: a SQLite database has no password"],
        ),
        (
            MINIMAL + "trust:\n  refresh: tuf\n  signing_config: sc.json\n",
            [
                "c.yaml:5: trust.signing_config: sc.json: no such file (give a path, or 'default')",
                "c.yaml:5: trust.signing_config: with refresh: tuf both files come from TUF: "
                "use default, or refresh: none to use this file",
            ],
        ),
        (
            MINIMAL + "watch:\n  - name: w\n    match: {san: x}\n    severity: 3\n"
            "    alert_expected_use: true\n",
            [
                "c.yaml:6: watch[0].severity: a severity is one of info, low, medium, high, "
                "critical",
                "c.yaml:7: watch[0].alert_expected_use: needs expect: without it every match "
                "is a watched_use finding",
            ],
        ),
        (
            MINIMAL + "watch:\n  - name: w\n    match: {}\n    expect: [san]\n    severity: low\n",
            [
                "c.yaml:5: watch[0].match: a selector is a non-empty mapping of fields",
                "c.yaml:6: watch[0].expect: a selector is a non-empty mapping of fields",
            ],
        ),
        (
            MINIMAL + "watch:\n  - name: w\n    severity: low\n    match:\n      extensions:\n"
            "        1.3.6.1.4.1.57264.1.999: {regex: ''}\n      san: []\n",
            [
                "c.yaml:8: watch[0].match.extensions.1.3.6.1.4.1.57264.1.999.regex: a pattern "
                "must not be empty",
                "c.yaml:9: watch[0].match.san: an empty list matches nothing",
            ],
        ),
        (
            MINIMAL + "alerts:\n  sinks:\n    - {name: s, type: webhook}\n"
            f"    - {{name: p, type: pagerduty, secret: {SECRET}}}\n"
            "    - {name: q, type: email}\n",
            [
                "c.yaml:5: alerts.sinks[0].url: a webhook sink needs url or url_env",
                "c.yaml:5: alerts.sinks[0].secret_env: a webhook sink needs secret_env or "
                "secret: receivers check signatures",
                "c.yaml:6: alerts.sinks[1].secret: only webhook sinks are signed with a secret",
                "c.yaml:6: alerts.sinks[1].routing_key_env: a pagerduty sink needs "
                "routing_key_env or routing_key",
                "c.yaml:7: alerts.sinks[2].type: must be 'webhook', 'slack', 'pagerduty' or "
                "'alertmanager' (got 'email')",
            ],
        ),
        (
            MINIMAL + "alerts:\n  sinks:\n    - {name: s, type: slack, url: 'https://a', "
            "url_env: U, rules: [], kinds: [health, health]}\n    - {name: s, type: slack, "
            "url: 'https://b'}\n",
            [
                "c.yaml:5: alerts.sinks[0].rules: an empty list: remove the option instead",
                "c.yaml:5: alerts.sinks[0].kinds: lists a value twice",
                "c.yaml:5: alerts.sinks[0].url_env: give url or url_env, not both",
                "c.yaml:6: alerts.sinks[1].name: duplicate sink name: alerts.sinks[0] has it too",
            ],
        ),
        (
            MINIMAL + "health:\n  stall_after: 10s\n  lag_entries: -5\n  lag_seconds: 1h\n",
            [
                "c.yaml:4: health.stall_after: must be at least 1m",
                "c.yaml:5: health.lag_entries: must be greater than or equal to 1",
            ],
        ),
        (
            MINIMAL + "alerts:\n  sinks:\n    - name: s\n      type: webhook\n"
            "      url: https://soc.example/hook\n      secret: whsec_c2hvcnQ=\n",
            [
                "c.yaml:8: alerts.sinks[0].secret: webhook secret decodes to 5 bytes; Standard "
                "Webhooks secrets are 24 to 64 random bytes",
            ],
        ),
        (
            MINIMAL + "logs: []\n",
            [
                "c.yaml:3: logs: given twice (first at line 1)",
                "c.yaml:3: logs: list at least one log to monitor",
            ],
        ),
    ],
)
def test_mistakes(text: str, expected: list[str]) -> None:
    assert _errors(text) == expected


def test_a_bad_secret_from_the_environment_is_never_echoed() -> None:
    text = MINIMAL + (
        "alerts:\n  sinks:\n    - {name: s, type: slack, url_env: SLACK_URL}\n"
        "server:\n  tokens:\n    - {name: t, sha256_env: TOKEN_HASH}\n"
        "database:\n  url: 'postgresql+asyncpg://u:inline-password@h:notaport/db'\n"
    )
    env = {"SLACK_URL": "hooks.slack.com/no-scheme-secret", "TOKEN_HASH": "short-secret-hash"}
    errors = _errors(text, env)
    assert errors == [
        "c.yaml:5: alerts.sinks[0].url_env: environment variable SLACK_URL: must be an "
        "http(s) URL with a host, such as https://host/path",
        "c.yaml:8: server.tokens[0].sha256_env: environment variable TOKEN_HASH: must be 64 "
        "hexadecimal digits: the SHA-256 of the bearer token",
        "c.yaml:10: database.url: not a database URL, such as sqlite+aiosqlite:///data/monitor.db",
    ]
    with pytest.raises(ConfigFileError) as info:
        parse_settings(text, "c.yaml", environ=env)
    for shown in (str(info.value), repr(info.value), str(info.value.__cause__)):
        for secret in ("no-scheme-secret", "short-secret-hash", "inline-password"):
            assert secret not in shown


def test_programmatic_validation_reports_the_same_problems() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Settings.model_validate(
            {"logs": [{"name": "r", "api": "v1", "url": "https://r", "start": -1}]},
            context={"environ": {}},
        )
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (
            ("logs", 0, "start"),
            "must be tip, resume, or a log index (an integer, 0 or more)",
        )
    ]


def test_kinds_and_sections_left_empty() -> None:
    settings = parse_settings(
        MINIMAL + "watch:\nserver:\nalerts:\n  sinks:\n    - {name: s, type: alertmanager, "
        "url: 'http://am:9093/', kinds: [integrity_failure], rules: null}\n",
        environ={},
    )
    assert settings.watch == ()
    assert settings.server.tokens == ()
    (sink,) = settings.alerts.sinks
    assert sink.kinds == (FindingKind.INTEGRITY_FAILURE,)
    assert sink.endpoint() == "http://am:9093"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/monitor.db",
        "sqlite+aiosqlite:////var/lib/tlog-monitor/monitor.db",
        "postgres://monitor@db/tlog",
        "postgresql://monitor@db:5432/tlog",
        "postgresql+asyncpg://monitor@db/tlog",
    ],
)
def test_database_urls(url: str) -> None:
    postgres = url.startswith("postgres")
    password = ", password_env: PW" if postgres else ""
    settings = parse_settings(
        MINIMAL + f"database: {{url: '{url}'{password}}}\n", environ={"PW": "pw-secret"}
    )
    db = settings.database
    assert db.url == url
    assert "pw-secret" not in db.masked_url() + repr(db)
    if postgres:
        assert db.sqlalchemy_url().password == "pw-secret"
        assert ":***@" in db.masked_url()


def test_ipv6_listen_and_index_start() -> None:
    settings = parse_settings(
        "logs:\n  - {name: r, api: v1, url: 'https://r.example', start: 12345}\n"
        "server: {listen: '[::1]:8080'}\n",
        environ={},
    )
    assert settings.logs[0].start == 12345
    assert (settings.server.listen.host, settings.server.listen.port) == ("::1", 8080)
    assert str(settings.server.listen) == "[::1]:8080"


# --- reading the file ---------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("logs:\n  - name: rekor\n    api: v1\n   url: https://x\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}:4: YAML syntax error: ")
    path.write_text("logs: [a, b\nwatch: []\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2: YAML syntax error: .*flow sequence"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("- a\n- b\n", "c.yaml:1: the top level is a list"),
        ("just words\n", "c.yaml:1: the top level is a string"),
        ("", "c.yaml: the file is empty"),
        ("# only comments\n", "c.yaml: the file is empty"),
    ],
)
def test_the_top_level_must_be_a_mapping(text: str, what: str) -> None:
    (line,) = _errors(text)
    assert line == (
        f"{what}; a configuration is a mapping of sections: logs, trust, database, ha, server, "
        "watch, images, alerts, health, processing"
    )


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'nope.yaml'}: cannot read the configuration: No such file or directory"
    )
    with pytest.raises(ConfigError, match="cannot read the configuration: Is a directory"):
        load_settings(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"logs:\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"binary\.yaml:2: not UTF-8 text"):
        load_settings(binary)


def test_anchors_and_merge_keys_work() -> None:
    settings = parse_settings(
        "logs:\n  - &base {name: a, api: v1, url: 'https://a.example', poll_interval: 1m}\n"
        "  - <<: *base\n    name: b\n    url: https://b.example\n",
        environ={},
    )
    assert [(log.name, log.url, log.poll_interval) for log in settings.logs] == [
        ("a", "https://a.example", timedelta(minutes=1)),
        ("b", "https://b.example", timedelta(minutes=1)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        (45, timedelta(seconds=45)),
        ("45", timedelta(seconds=45)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_durations(text: str | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "s", "5x", "-5s", "5 m x", True, None, [1], "1e3"])
def test_not_durations(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- logs against the trust root (check-config) -------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_config_summarises_without_secrets(
    issue_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOC_WEBHOOK_SECRET", SECRET)
    code, out, err = _run(capsys, str(issue_file))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"config: {issue_file}: OK"
    assert lines[1].startswith(
        "trust: trusted root default (Sigstore production), signing config default "
        "(Sigstore production); no refresh;"
    )
    assert "logs: 2" in lines
    assert (
        "  rekor: api v1, https://rekor.sigstore.dev; start tip, poll every 30s, 8 requests/s"
        in lines
    )
    assert (
        "  rekor-v2: api v2, discover v2 shards from the signing config: "
        "https://log2025-1.rekor.sigstore.dev; start resume, poll every 30s, 8 requests/s" in lines
    )
    db = f"sqlite+aiosqlite:///{issue_file.parent}/data/monitor.db"
    assert f"database: {db}; migrations applied at start" in lines
    assert (
        "server: listen 127.0.0.1:9464; tokens: responders (read+write); metrics need a "
        "token, health public" in lines
    )
    assert "rules: 4" in lines
    assert "  acme-release-signing: severity high" in lines
    assert "    match:  ext:source-repository-owner-uri = https://github.com/acme" in lines
    assert (
        "    expect: issuer = https://token.actions.githubusercontent.com; san = "
        "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*; "
        "ext:runner-environment = github-hosted" in lines
    )
    assert r"    match:  san = *@acme.com | regex:ops-[a-z]+@acme\.io" in lines
    assert "  offline-root-key: severity critical" in lines
    assert "sinks: 1" in lines
    assert (
        "  soc: webhook to soc.example.com, min severity medium, signed with the secret from "
        "$SOC_WEBHOOK_SECRET" in lines
    )
    assert SECRET not in out
    assert TOKEN_HASH not in out
    assert "/hooks/tlog" not in out


def test_check_config_of_the_example_shows_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(key, value)
    code, out, _ = _run(capsys, str(CONFIG_DIR / "monitor.example.yaml"))
    assert code == 0
    assert "database: postgresql+asyncpg://monitor:***@db.internal:5432/tlog" in out
    assert "  chat: slack to hooks.slack.com (url from $SLACK_WEBHOOK_URL)" in out
    for secret in EXAMPLE_SECRETS:
        assert secret not in out


def test_check_config_default_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(CONFIG_DIR.parent)
    code, out, _ = _run(capsys)
    assert code == 0
    assert out.startswith("config: config/monitor.yaml: OK\n")
    assert "  rekor-v2: api v2, discover v2 shards from the signing config: https://" in out


def test_check_config_reports_every_error_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SOC_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "bad.yaml"
    path.write_text(MISTAKES)
    code, out, err = _run(capsys, str(path))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"tlog-monitor: error: {path}: 14 errors"
    assert len(lines) == 15
    assert all(line.startswith(f"{path}:") for line in lines[1:])
    assert f"{path}:10: logs[0].requests_per_second: must be greater than 0" in lines
    assert "Traceback" not in err


def test_check_config_checks_logs_against_the_trust_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"trust:\n  trusted_root: {STAGING_ROOT}\n"
        "logs:\n"
        "  - {name: prod, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        "  - name: prod-v2\n    api: v2\n    url: https://log2025-1.rekor.sigstore.dev\n"
        "  - {name: shards, api: v2, discover: true}\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    first, *lines = err.splitlines()
    assert first == f"tlog-monitor: error: {path}: 3 errors"
    assert [line.split(", so its")[0] for line in lines] == [
        f"{path}:4: logs[0].url: not a log of the trusted root ({STAGING_ROOT})",
        f"{path}:7: logs[1].url: not a log of the trusted root ({STAGING_ROOT})",
        f"{path}:8: logs[2].discover: the signing config (the default one) lists no current "
        "v2 shard",
    ]
    assert "checkpoints cannot be verified; it lists https://rekor.sigstage.dev" in lines[0]


def test_check_config_refuses_a_log_key_without_validity_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = json.loads(PROD_ROOT.read_text(encoding="utf-8"))
    for tlog in root["tlogs"]:
        del tlog["publicKey"]["validFor"]["start"]
    root_path = tmp_path / "root.json"
    root_path.write_text(json.dumps(root))
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"trust:\n  trusted_root: {root_path}\n"
        "logs:\n"
        "  - {name: prod, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        "  - {name: shards, api: v2, discover: true}\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    first, *lines = err.splitlines()
    assert first == f"tlog-monitor: error: {path}: 3 errors"
    undated = (
        "the trusted root gives the key of {} no validity start (publicKey.validFor.start): "
        f"a key without one is not trusted ({root_path})"
    )
    assert lines == [
        f"{path}:4: logs[0].url: " + undated.format("https://rekor.sigstore.dev"),
        f"{path}:5: logs[1].discover: " + undated.format("https://log2025-1.rekor.sigstore.dev"),
        f"{path}:5: logs[1].discover: the signing config (the default one) lists no current "
        "v2 shard",
    ]


def test_check_config_api_must_match_the_signing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "logs:\n  - name: v2-as-v1\n    api: v1\n    url: https://log2025-1.rekor.sigstore.dev\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert err == (
        f"tlog-monitor: error: {path}:3: logs[0].api: the signing config says "
        "https://log2025-1.rekor.sigstore.dev speaks v2\n"
    )


def test_check_config_unreadable_trust_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "root.json"
    broken.write_text("{}")
    path = tmp_path / "monitor.yaml"
    path.write_text(f"trust:\n  trusted_root: {broken}\n" + MINIMAL)
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert err.startswith(f"tlog-monitor: error: {path}:1: trust: {broken}: not a valid")


@pytest.mark.slow
def test_console_script(tmp_path: Path, issue_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SOC_WEBHOOK_SECRET"}
    ok = subprocess.run(
        [EXE, "check-config", issue_file],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "SOC_WEBHOOK_SECRET": SECRET},
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"config: {issue_file}: OK\n")
    assert SECRET not in ok.stdout + ok.stderr
    assert TOKEN_HASH not in ok.stdout + ok.stderr

    missing = subprocess.run(
        [EXE, "check-config", issue_file], capture_output=True, text=True, check=False, env=env
    )
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr == (
        f"tlog-monitor: error: {issue_file}:{SECRET_ENV_LINE}: alerts.sinks[0].secret_env: "
        "environment variable SOC_WEBHOOK_SECRET is not set\n"
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text(MISTAKES)
    many = subprocess.run(
        [EXE, "check-config", bad], capture_output=True, text=True, check=False, env=env
    )
    assert many.returncode == 2
    assert f"{bad}: 14 errors" in many.stderr
    assert "Traceback" not in many.stderr

    nofile = subprocess.run(
        [EXE, "check-config", tmp_path / "nope.yaml"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert nofile.returncode == 2
    assert "cannot read the configuration" in nofile.stderr
    assert "Traceback" not in nofile.stderr


# --- expected uses reach a sink only when both ask -----------------------------------------

RELEASES = (
    "watch:\n  - name: rel\n    match: {san: x}\n    expect: {issuer: y}\n    severity: low\n"
    "    alert_expected_use: ANNOUNCE\n"
    "alerts:\n  sinks:\n    - name: hook\n      type: webhook\n      url: https://h.example\n"
    f"      secret: {SECRET}\n"
)


def test_an_expected_use_is_announced_only_when_rule_and_sink_ask() -> None:
    both = MINIMAL + RELEASES.replace("ANNOUNCE", "true") + "      kinds: [expected_use]\n"
    settings = parse_settings(both, "c.yaml", environ={})
    assert settings.watch[0].alert_expected_use
    assert _errors(MINIMAL + RELEASES.replace("ANNOUNCE", "true")) == [
        "c.yaml:8: watch[0].alert_expected_use: no sink takes expected_use findings: list "
        "expected_use in the kinds of the sinks that should hear of them"
    ]
    assert _errors(
        MINIMAL + RELEASES.replace("ANNOUNCE", "false") + "      kinds: [health, expected_use]\n"
    ) == [
        "c.yaml:15: alerts.sinks[0].kinds[1]: no watch rule has alert_expected_use: true, so "
        "no expected use is announced"
    ]


# --- paths are relative to the file ---------------------------------------------------------


def test_relative_paths_are_relative_to_the_file_wherever_it_is_read_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "etc"
    (home / "trust").mkdir(parents=True)
    for name in ("trusted_root", "signing_config"):
        (home / "trust" / f"{name}.json").write_text("{}")
    config = home / "monitor.yaml"
    config.write_text(
        MINIMAL + "trust:\n  trusted_root: trust/trusted_root.json\n"
        "  signing_config: trust/signing_config.json\n"
        "database:\n  url: sqlite+aiosqlite:///../var/monitor.db\n"
    )
    elsewhere = tmp_path / "else"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings("../etc/monitor.yaml", environ={})
    assert settings.trust.trusted_root == str(home / "trust" / "trusted_root.json")
    assert settings.trust.signing_config == str(home / "trust" / "signing_config.json")
    assert settings.trust.tuf_cache == str(home / "data" / "tuf")  # a default, beside the file
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'monitor.db'}"
    assert load_database_settings("../etc/monitor.yaml", environ={}) == settings.database
    # a missing file names where it was looked for
    config.write_text(MINIMAL + "trust:\n  trusted_root: nope.json\n")
    with pytest.raises(ConfigFileError) as info:
        load_settings(config, environ={})
    assert info.value.lines == (
        f"{config}:4: trust.trusted_root: nope.json: no such file ({home / 'nope.json'}) "
        "(give a path, or 'default')",
    )
    # text with no file behind it keeps the working directory's
    absolute = parse_settings(MINIMAL, "c.yaml", environ={})
    assert absolute.database.url == "sqlite+aiosqlite:///data/monitor.db"


def test_the_database_section_alone_is_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text(
        "logs: nonsense\nserver: {listen: nowhere}\n"
        "database:\n  url: sqlite+aiosqlite:///m.db\n  pool_size: 0\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_database_settings(config, environ={})
    assert info.value.lines == (
        f"{config}:5: database.pool_size: must be greater than or equal to 1",
    )
    config.write_text("logs: nonsense\nserver: {listen: nowhere}\n")  # no database: the default
    assert load_database_settings(config, environ={}).url == (
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'monitor.db'}"
    )
    config.write_text("- a list\n")
    with pytest.raises(ConfigFileError, match="the top level is a list"):
        load_database_settings(config, environ={})
