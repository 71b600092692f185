"""The configuration file as frozen pydantic models, one per section.

Every model forbids unknown keys (a typo is an error, never a silently ignored option), is
frozen, and resolves ``*_env`` fields from the environment (see ``secrets``). Secrets are
``SecretStr``: they never show in ``repr``, ``str`` or error messages.

What the configuration reference (``docs/configuration.md``) says is declared on the fields:
each option's description (``Field(description=...)``), the words for a validated type
(``fields.Shown``), bounds, durations (``durations.Duration``), and for a field that holds a
section, a note shown under the section's heading (``json_schema_extra={"note": ...}``).

The sections live in their own modules (``logs``, ``database``, ``server``, ``watch``,
``alerting``); this one joins them into ``Settings`` and checks what spans sections.

Relative paths (trust files, the SQLite database, the TUF cache; defaults included) are
relative to the directory of the configuration file (``monitor.config.paths``), not to the
working directory of the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from monitor.config.alerting import (
    PAGERDUTY_EVENTS_URL,
    AlertSettings,
    HealthSettings,
    SinkSettings,
)
from monitor.config.base import ConfigModel, raw_items
from monitor.config.database import DEFAULT_DATABASE_URL, DatabaseSettings
from monitor.config.fields import none_is_empty
from monitor.config.ha import HaSettings
from monitor.config.images import ImageSettings
from monitor.config.logs import PRODUCTION_TUF_URL, LogSettings, TrustSettings
from monitor.config.problems import Loc, Problem, format_loc
from monitor.config.processing import ProcessingSettings
from monitor.config.server import DEFAULT_LISTEN, ServerSettings, TokenSettings
from monitor.config.watch import WatchRule
from monitor.core.errors import MalformedInputError
from monitor.core.findings import FindingKind
from monitor.core.imageref import parse_repository
from monitor.rules.spec import RuleSpec

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_LISTEN",
    "PAGERDUTY_EVENTS_URL",
    "PRODUCTION_TUF_URL",
    "AlertSettings",
    "DatabaseSettings",
    "HaSettings",
    "HealthSettings",
    "ImageSettings",
    "LogSettings",
    "ServerSettings",
    "Settings",
    "SinkSettings",
    "TokenSettings",
    "TrustSettings",
    "WatchRule",
]

EXPECTED_USE = str(FindingKind.EXPECTED_USE)


class Settings(ConfigModel):
    """The whole configuration, validated, frozen, secrets resolved."""

    logs: Annotated[tuple[LogSettings, ...], BeforeValidator(none_is_empty)] = Field(
        json_schema_extra={
            "note": "At least one. Each log must be one of the trusted root, so that its "
            "checkpoints can be verified."
        }
    )
    trust: TrustSettings = Field(default_factory=TrustSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ha: HaSettings | None = Field(
        default=None,
        json_schema_extra={
            "note": "Several replicas on one PostgreSQL database, each log led by one of "
            "them (see [deployment](deployment.md#high-availability)). Without it, one "
            "monitor runs per database and a second one refuses to start. Not for SQLite."
        },
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    watch: Annotated[tuple[WatchRule, ...], BeforeValidator(none_is_empty)] = Field(
        default=(),
        json_schema_extra={
            "note": "Rules are evaluated independently: an entry may give one finding per rule "
            "it matches. See [watch rules](#watch-rules) for selectors and patterns."
        },
    )
    images: Annotated[tuple[ImageSettings, ...], BeforeValidator(none_is_empty)] = Field(
        default=(),
        json_schema_extra={
            "note": "Container image repositories watched on their registries: every image a "
            "watched tag points at must carry a valid signature (or attestation) from an "
            "expected signer."
        },
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings,
        json_schema_extra={
            "note": "Delivery from the outbox, at least once. See "
            "[webhooks and alerting](webhooks.md)."
        },
    )
    health: HealthSettings = Field(
        default_factory=HealthSettings,
        json_schema_extra={
            "note": "Health findings resolve by themselves when the condition clears; each "
            "episode is one finding (and one alert)."
        },
    )

    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)

    @property
    def rules(self) -> tuple[RuleSpec, ...]:
        """The watch rules in the rule language, in file order."""
        return tuple(rule.spec for rule in self.watch)

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = []
        if "logs" in raw and not raw["logs"]:
            out.append(Problem(("logs",), "list at least one log to monitor"))
        alerts = raw.get("alerts")
        server = raw.get("server")
        sinks = alerts.get("sinks") if isinstance(alerts, Mapping) else None
        tokens = server.get("tokens") if isinstance(server, Mapping) else None
        out += _ha_needs_postgresql(raw)
        out += _unique(("logs",), raw.get("logs"), "name", "log name")
        out += _unique(("watch",), raw.get("watch"), "name", "rule name")
        out += _unique(("alerts", "sinks"), sinks, "name", "sink name")
        out += _unique(("server", "tokens"), tokens, "name", "token name")
        out += _unique(("logs",), raw.get("logs"), "url", "log URL", _normal_url)
        out += _unique(("images",), raw.get("images"), "repository", "repository", _normal_repo)
        discovering = [i for i, log in raw_items(raw.get("logs")) if log.get("discover") is True]
        out += [
            Problem(("logs", i, "discover"), f"logs[{discovering[0]}] already discovers v2 shards")
            for i in discovering[1:]
        ]
        rule_names = {
            r["name"] for _, r in raw_items(raw.get("watch")) if isinstance(r.get("name"), str)
        }
        out += _expected_use_routes(raw.get("watch"), sinks)
        out += _orphans_need_images(raw)
        for i, sink in raw_items(sinks):
            wanted = sink.get("rules")
            if not isinstance(wanted, list):
                continue
            for j, rule in enumerate(wanted):
                if isinstance(rule, str) and rule not in rule_names:
                    out.append(
                        Problem(("alerts", "sinks", i, "rules", j), f"no watch rule named {rule!r}")
                    )
        return out


def _orphans_need_images(raw: Mapping[str, Any]) -> list[Problem]:
    """Without a watched registry nothing could explain an entry: every one would be an
    orphan."""
    if raw.get("images"):
        return []
    return [
        Problem(
            ("watch", i, "orphans"),
            "needs an images section: without a watched registry every entry of the rule "
            "would be an orphan",
        )
        for i, r in raw_items(raw.get("watch"))
        if r.get("orphans") is not None
    ]


def _expected_use_routes(watch: Any, sinks: Any) -> list[Problem]:
    """An expected use reaches a sink only when its rule announces it and the sink lists the
    kind: one side without the other would announce nothing, silently."""
    announcing = [
        i
        for i, r in raw_items(watch)
        if r.get("alert_expected_use") is True and r.get("expect") is not None
    ]
    listing = [
        (i, kinds.index(EXPECTED_USE))
        for i, sink in raw_items(sinks)
        if isinstance(kinds := sink.get("kinds"), list) and EXPECTED_USE in kinds
    ]
    out = []
    if not listing:
        out += [
            Problem(
                ("watch", i, "alert_expected_use"),
                "no sink takes expected_use findings: list expected_use in the kinds of the "
                "sinks that should hear of them",
            )
            for i in announcing
        ]
    if not announcing:
        out += [
            Problem(
                ("alerts", "sinks", i, "kinds", j),
                "no watch rule has alert_expected_use: true, so no expected use is announced",
            )
            for i, j in listing
        ]
    return out


def _ha_needs_postgresql(raw: Mapping[str, Any]) -> list[Problem]:
    if raw.get("ha") is None:
        return []
    db = raw.get("database")
    url = db.get("url", DEFAULT_DATABASE_URL) if isinstance(db, Mapping) else DEFAULT_DATABASE_URL
    if isinstance(url, str) and url.split(":", 1)[0].split("+", 1)[0] == "sqlite":
        return [
            Problem(
                ("ha",),
                "several replicas need PostgreSQL: a SQLite database is for one monitor "
                "(remove ha:, or set database.url to postgresql+asyncpg://...)",
            )
        ]
    return []


def _normal_repo(value: str) -> str:
    """``alpine`` and ``docker.io/library/alpine`` are one repository."""
    try:
        return str(parse_repository(value))
    except MalformedInputError:
        return value  # its own check says what is wrong


def _normal_url(value: str) -> str:
    return value.rstrip("/").lower()


def _unique(
    where: Loc, value: Any, key: str, what: str, normal: Any = lambda v: v
) -> list[Problem]:
    first: dict[Any, int] = {}
    out = []
    for i, item in raw_items(value):
        v = item.get(key)
        if not isinstance(v, str):
            continue
        v = normal(v)
        if v in first:
            at = format_loc((*where, first[v]))
            out.append(Problem((*where, i, key), f"duplicate {what}: {at} has it too"))
        first.setdefault(v, i)
    return out
