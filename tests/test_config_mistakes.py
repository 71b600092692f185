"""Configuration: every mistake of a file reported at once with its line, a secret from the
environment never echoed, and expected uses that reach a sink only when rule and sink ask."""

from __future__ import annotations

import pydantic
import pytest

from monitor.config import ConfigFileError, Settings, parse_settings
from tests.config_support import MINIMAL, MISTAKES, SECRET, TOKEN_HASH, config_errors


def test_every_mistake_is_reported_at_once_with_its_line() -> None:
    errors = config_errors(MISTAKES)
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
    assert config_errors(text) == expected


def test_a_bad_secret_from_the_environment_is_never_echoed() -> None:
    text = MINIMAL + (
        "alerts:\n  sinks:\n    - {name: s, type: slack, url_env: SLACK_URL}\n"
        "server:\n  tokens:\n    - {name: t, sha256_env: TOKEN_HASH}\n"
        "database:\n  url: 'postgresql+asyncpg://u:inline-password@h:notaport/db'\n"
    )
    env = {"SLACK_URL": "hooks.slack.com/no-scheme-secret", "TOKEN_HASH": "short-secret-hash"}
    errors = config_errors(text, env)
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
    assert config_errors(MINIMAL + RELEASES.replace("ANNOUNCE", "true")) == [
        "c.yaml:8: watch[0].alert_expected_use: no sink takes expected_use findings: list "
        "expected_use in the kinds of the sinks that should hear of them"
    ]
    assert config_errors(
        MINIMAL + RELEASES.replace("ANNOUNCE", "false") + "      kinds: [health, expected_use]\n"
    ) == [
        "c.yaml:15: alerts.sinks[0].kinds[1]: no watch rule has alert_expected_use: true, so "
        "no expected use is announced"
    ]
