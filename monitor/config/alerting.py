"""The settings of what the monitor tells people: alert sinks and their delivery, and when it
raises health findings about itself and the logs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from monitor.config import fields
from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import (
    EnvName,
    Name,
    SecretHttpUrl,
    WebhookSecret,
    distinct,
    none_is_empty,
)
from monitor.config.problems import Problem
from monitor.config.selectors import SeverityName
from monitor.core.findings import FindingKind, Severity

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

SinkType = Literal["webhook", "slack", "pagerduty", "alertmanager"]
_NEEDS_URL = ("webhook", "slack", "alertmanager")


class SinkSettings(ConfigModel):
    """Where alerts go. Filters (``min_severity``, ``rules``, ``kinds``) combine with AND."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("url", "url_env"),
        ("secret", "secret_env"),
        ("routing_key", "routing_key_env"),
    )

    name: Name = Field(
        description="The sink's name, for `tlog-monitor alerts test --sink NAME`, dead letters "
        "and metrics."
    )
    type: SinkType = Field(
        description="`webhook` (JSON of the documented schema, signed the Standard Webhooks "
        "way), `slack` (incoming webhook), `pagerduty` (Events API v2) or `alertmanager` "
        "(Prometheus Alertmanager, `POST /api/v2/alerts`)."
    )
    url: SecretHttpUrl | None = Field(
        default=None,
        description="Where to deliver; required for `webhook`, `slack` and `alertmanager` (its "
        f"base URL); for `pagerduty` it defaults to `{PAGERDUTY_EVENTS_URL}`. Only its host is "
        "ever shown: a Slack URL is itself a secret, so prefer `url_env` there.",
    )
    url_env: EnvName | None = None
    secret: WebhookSecret = Field(
        default=None,
        description="The Standard Webhooks signing secret, `whsec_` and base64 of 24 to 64 "
        "random bytes; several, separated by spaces, while rotating (each message then carries "
        "one signature per secret). Required for `webhook`, refused for other types. Better in "
        "`secret_env`.",
    )
    secret_env: EnvName | None = None
    routing_key: SecretStr | None = Field(
        default=None,
        description="The PagerDuty Events API v2 integration key; required for `pagerduty`, "
        "refused for other types. Better in `routing_key_env`.",
    )
    routing_key_env: EnvName | None = None
    min_severity: SeverityName = Field(
        default=Severity.MEDIUM, description="The least severity sent."
    )
    rules: Annotated[tuple[Name, ...], AfterValidator(distinct)] | None = Field(
        default=None,
        description="Only findings of these rules (none: every rule); findings of no rule "
        "(integrity, health, malformed entries) pass this filter. Each name must be a rule of "
        "`watch`.",
    )
    kinds: Annotated[tuple[FindingKind, ...], AfterValidator(distinct)] | None = Field(
        default=None,
        description="Only these kinds of finding (none: every kind but `expected_use`). A sink "
        "takes `expected_use` findings (records of signatures a rule allows) only by listing "
        "it, and only for rules with `alert_expected_use: true` (one at least must).",
    )
    rate_limit_per_minute: int = Field(
        default=60,
        ge=1,
        le=10_000,
        description="At most this many messages a minute to this sink; the rest wait in the "
        "outbox, none is dropped.",
    )
    group_window: Annotated[timedelta, Duration(timedelta(), timedelta(hours=1))] = Field(
        default=timedelta(seconds=10),
        description="Triggers of one rule written within this window go out as one message "
        "(`0s`: each at once).",
    )
    timeout: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(minutes=5))] = Field(
        default=timedelta(seconds=10), description="Time allowed for one delivery request."
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        kind = raw.get("type")
        if kind not in ("webhook", "slack", "pagerduty", "alertmanager"):
            return []

        def given(key: str) -> str | None:
            return next((k for k in (key, f"{key}_env") if raw.get(k) is not None), None)

        out = []
        if kind in _NEEDS_URL and given("url") is None:
            out.append(Problem(("url",), f"a {kind} sink needs url or url_env"))
        if kind == "webhook" and given("secret") is None:
            out.append(
                Problem(
                    ("secret_env",),
                    "a webhook sink needs secret_env or secret: receivers check signatures",
                )
            )
        if kind != "webhook" and (key := given("secret")) is not None:
            out.append(Problem((key,), "only webhook sinks are signed with a secret"))
        if kind == "pagerduty" and given("routing_key") is None:
            out.append(
                Problem(
                    ("routing_key_env",), "a pagerduty sink needs routing_key_env or routing_key"
                )
            )
        if kind != "pagerduty" and (key := given("routing_key")) is not None:
            out.append(Problem((key,), "only pagerduty sinks have a routing key"))
        return out

    def endpoint(self) -> str:
        """The configured URL (a secret for Slack: keep it out of logs); for an Alertmanager
        its base URL (``monitor.alerts.deliver.request_url`` is where requests go)."""
        if self.url is not None:
            return self.url.get_secret_value()
        return PAGERDUTY_EVENTS_URL

    @property
    def host(self) -> str:
        """The host of the endpoint: what may be shown of it."""
        return fields.url_host(self.endpoint())


class AlertSettings(ConfigModel):
    sinks: Annotated[tuple[SinkSettings, ...], BeforeValidator(none_is_empty)] = Field(
        default=(),
        description="Where findings go. Each sink gets the findings that pass all of its filters.",
        json_schema_extra={
            "note": "`url`, `secret` and `routing_key` can each come from the environment "
            "instead (`url_env`, `secret_env`, `routing_key_env`)."
        },
    )
    max_attempts: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Delivery attempts before a message is dead-lettered (see "
        "`tlog-monitor alerts dead`).",
    )
    max_age: Annotated[timedelta, Duration(timedelta(minutes=1), timedelta(days=30))] = Field(
        default=timedelta(hours=24),
        description="Age after which an undelivered message is dead-lettered.",
    )


class HealthSettings(ConfigModel):
    """When the monitor raises ``health`` findings about itself and the logs."""

    stall_after: Annotated[timedelta, Duration(timedelta(minutes=1))] = Field(
        default=timedelta(minutes=15),
        description="A `log_stalled` finding when a log has had no verified progress for this "
        "long while entries are left to read, or its checkpoint has not changed for this long "
        "(not for a retired shard).",
    )
    unreachable_after: Annotated[timedelta, Duration(timedelta(seconds=30))] = Field(
        default=timedelta(minutes=5),
        description="A `log_unreachable` finding when every pass of a log has failed for this "
        "long, and a `sink_failing` finding when an alert has waited this long undelivered. "
        "`/readyz` also answers 503 for a log not verified within this time.",
    )
    lag_entries: int = Field(
        default=10_000,
        ge=1,
        description="A `lag` finding when the monitor is more than this many entries behind a "
        "log's latest checkpoint.",
    )
    lag_seconds: Annotated[float, Duration(timedelta(seconds=1))] = Field(
        default=600.0,
        description="A `lag` finding when the monitor has been behind a log's latest "
        "checkpoint without interruption for this long.",
    )
