"""Configuration: values a file may hold: sections left empty, database URLs, an IPv6
listen address, YAML anchors and durations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from monitor.config import parse_settings
from monitor.config.durations import format_duration, parse_duration
from monitor.core.findings import FindingKind
from tests.config_support import MINIMAL


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
