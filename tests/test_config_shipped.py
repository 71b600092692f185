"""Configuration: the shipped files load as documented, the example documents every option,
and the defaults agree with the code that uses them."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from monitor.config import (
    DEFAULT_CONFIG_PATH,
    ConfigFileError,
    LogSettings,
    Settings,
    load_settings,
)
from monitor.config.models import PRODUCTION_TUF_URL
from monitor.logclient.http import HttpPolicy
from monitor.trust import tuf
from tests.config_support import CONFIG_DIR, EXAMPLE_ENV, EXAMPLE_SECRETS


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
