"""The configuration file as frozen pydantic models, one per section.

Every model forbids unknown keys (a typo is an error, never a silently ignored option), is
frozen, and resolves ``*_env`` fields from the environment (see ``secrets``). Secrets are
``SecretStr``: they never show in ``repr``, ``str`` or error messages.

Relative paths (trust files, the SQLite database, the TUF cache; defaults included) are
relative to the directory of the configuration file (``monitor.config.paths``), not to the
working directory of the process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from monitor.config import fields
from monitor.config.base import ConfigModel
from monitor.config.durations import duration
from monitor.config.fields import ListenAddress, Start
from monitor.config.problems import Loc, Problem, error, format_loc
from monitor.config.selectors import parse_optional_selector, parse_selector, parse_severity
from monitor.core.findings import FindingKind, Severity
from monitor.rules.spec import RuleSpec, Selector

# Defaults shared with the code that uses them (tests check that they agree).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/monitor.db"
DEFAULT_LISTEN = ListenAddress("127.0.0.1", 9464)
DEFAULT_BATCH = {"v1": 1024, "v2": 4096}  # entries per transaction, by log API
PRODUCTION_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"  # = monitor.trust.tuf's
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# as monitor.storage.engine accepts them (it maps each to its async driver)
DATABASE_DRIVERS = ("sqlite", "sqlite+aiosqlite", "postgres", "postgresql", "postgresql+asyncpg")
MAX_REQUESTS_PER_SECOND = 100.0  # the public Rekor v1 allows about 16
EXPECTED_USE = str(FindingKind.EXPECTED_USE)


def _none_is_empty(value: Any) -> Any:
    """``watch:`` with every rule commented out is an empty list, not an error."""
    return () if value is None else value


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise error("an empty list: remove the option instead")
    if len(set(values)) != len(values):
        raise error("lists a value twice")
    return values


Name = Annotated[str, AfterValidator(fields.name)]
EnvName = Annotated[str, AfterValidator(fields.env_name)]
HttpUrl = Annotated[str, AfterValidator(fields.http_url)]
SecretHttpUrl = Annotated[SecretStr, BeforeValidator(fields.secret_http_url)]
TrustFile = Annotated[str, AfterValidator(fields.trust_file)]


def _seconds(minimum: timedelta, maximum: timedelta | None = None) -> PlainValidator:
    parse = duration(minimum, maximum)
    return PlainValidator(lambda v: parse(v).total_seconds())


class TrustSettings(ConfigModel):
    """Where the trusted root (log keys, Fulcio CAs) and signing config (API versions, v2
    shards) come from."""

    trusted_root: TrustFile = fields.DEFAULT
    signing_config: TrustFile = fields.DEFAULT
    refresh: Literal["none", "tuf"] = "none"
    refresh_interval: Annotated[
        timedelta, PlainValidator(duration(timedelta(minutes=5), timedelta(days=7)))
    ] = timedelta(hours=24)
    tuf_url: HttpUrl = PRODUCTION_TUF_URL
    tuf_cache: str = "data/tuf"

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = []
        if raw.get("refresh") == "tuf":
            for key in ("trusted_root", "signing_config"):
                if raw.get(key, fields.DEFAULT) != fields.DEFAULT:
                    out.append(
                        Problem(
                            (key,),
                            "with refresh: tuf both files come from TUF: use default, "
                            "or refresh: none to use this file",
                        )
                    )
        return out


class LogSettings(ConfigModel):
    """One log to monitor: a Rekor v1 instance, one Rekor v2 shard, or (``discover``) every
    v2 shard that the signing config lists, followed as they come and go."""

    name: Name
    api: Literal["v1", "v2"]
    url: HttpUrl | None = None
    discover: bool = False
    start: Annotated[Start, PlainValidator(fields.start_point)] = "resume"
    poll_interval: Annotated[
        timedelta, PlainValidator(duration(timedelta(seconds=1), timedelta(hours=1)))
    ] = timedelta(seconds=30)
    requests_per_second: float = Field(default=8.0, gt=0, le=MAX_REQUESTS_PER_SECOND)
    burst: float = Field(default=4.0, ge=1, le=1000)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    timeout: Annotated[
        timedelta, PlainValidator(duration(timedelta(seconds=1), timedelta(minutes=10)))
    ] = timedelta(seconds=30)
    # None: DEFAULT_BATCH[api]; a v2 chunk of 16 full tiles makes fewer, larger commits,
    # which share index pages: +6 to 17% catch-up speed for ~10 MB more memory
    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    index_all: bool = False
    retention: Annotated[timedelta, PlainValidator(duration(timedelta(hours=1)))] | None = None
    # what the log may make the monitor hold (monitor.logclient.limits): an entry (Rekor v1:
    # body and attestation) at most this, and its answers at most this much at once
    max_entry_bytes: int = Field(default=1 << 20, ge=64 << 10, le=16 << 20)
    memory_budget_bytes: int = Field(default=64 << 20, ge=1 << 20, le=1 << 30)
    # entries of a signed tree unavailable this long are a missing_entries integrity failure
    missing_after: Annotated[
        timedelta, PlainValidator(duration(timedelta(seconds=1), timedelta(days=7)))
    ] = timedelta(minutes=10)

    def chunk_size(self) -> int:
        """Entries per transaction: ``batch_size``, else the default for the API."""
        return self.batch_size if self.batch_size is not None else DEFAULT_BATCH[self.api]

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        api, url, discover = raw.get("api"), raw.get("url"), raw.get("discover", False)
        out = []
        if isinstance(discover, bool):
            if api == "v1" and discover:
                out.append(Problem(("discover",), "is for api: v2 (a Rekor v1 log has one URL)"))
            elif discover and url is not None:
                out.append(
                    Problem(("discover",), "give url (one shard) or discover: true, not both")
                )
            elif api == "v1" and url is None:
                out.append(Problem(("url",), "required for api: v1"))
            elif api == "v2" and url is None and not discover:
                out.append(
                    Problem(
                        ("url",),
                        "give url (one shard) or discover: true (every v2 shard in the "
                        "signing config)",
                    )
                )
        if raw.get("retention") is not None and raw.get("index_all") is not True:
            out.append(Problem(("retention",), "applies to index_all rows: set index_all: true"))
        return out


def _database_url(value: str) -> str:
    """Never echoes the URL: it may hold a password."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise error("not a database URL, such as sqlite+aiosqlite:///data/monitor.db") from None
    if url.drivername not in DATABASE_DRIVERS:
        raise error(
            "must be a SQLite (sqlite+aiosqlite:///path) or PostgreSQL "
            "(postgresql+asyncpg://user@host/db) URL"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise error("SQLite needs a file (sqlite+aiosqlite:///path): not an in-memory database")
    return value


class DatabaseSettings(ConfigModel):
    """Where findings, history and the monitor's state are stored."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("password", "password_env"),)

    url: Annotated[str, AfterValidator(_database_url)] = DEFAULT_DATABASE_URL
    password: SecretStr | None = None
    password_env: EnvName | None = None
    pool_size: int = Field(default=5, ge=1, le=100)
    migrate_on_start: bool = True

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        url = raw.get("url", DEFAULT_DATABASE_URL)
        given = next((k for k in ("password_env", "password") if raw.get(k) is not None), None)
        if given is None or not isinstance(url, str):
            return []
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            return []
        if parsed.get_backend_name() == "sqlite":
            return [Problem((given,), "a SQLite database has no password")]
        if parsed.password is not None:
            return [Problem((given,), "the url already holds a password; give it once")]
        return []

    def sqlalchemy_url(self) -> URL:
        """The URL to connect with, password included (keep it out of logs)."""
        url = make_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    def masked_url(self) -> str:
        """The URL to show people: any password replaced by ``***``."""
        return self.sqlalchemy_url().render_as_string(hide_password=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, (self.masked_url() if key == "url" else value)


class TokenSettings(ConfigModel):
    """A bearer token for the HTTP API, by its SHA-256 (the token itself is never stored)."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("sha256", "sha256_env"),)

    name: Name
    sha256: Annotated[SecretStr | None, BeforeValidator(fields.sha256_hex)] = None
    sha256_env: EnvName | None = None
    scopes: Annotated[tuple[Literal["read", "write"], ...], AfterValidator(_distinct)] = ("read",)

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        if raw.get("sha256") is None and raw.get("sha256_env") is None:
            return [Problem(("sha256",), "give sha256 (hex SHA-256 of the token) or sha256_env")]
        return []

    def digest(self) -> bytes:
        """The SHA-256 of the token, to compare in constant time."""
        assert self.sha256 is not None  # required by cross_checks
        return bytes.fromhex(self.sha256.get_secret_value())


class ServerSettings(ConfigModel):
    """The HTTP API, ``/metrics`` and the health endpoints (one listener)."""

    listen: Annotated[ListenAddress, PlainValidator(fields.listen_address)] = DEFAULT_LISTEN
    tokens: Annotated[tuple[TokenSettings, ...], BeforeValidator(_none_is_empty)] = ()
    metrics_public: bool = False
    health_public: bool = True
    max_page_size: int = Field(default=1000, ge=1, le=10_000)
    max_request_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    # slow or idle clients must not hold the daemon's file descriptors (monitor.api.connections)
    max_connections: int = Field(default=256, ge=1, le=65_536)
    header_timeout: Annotated[
        timedelta, PlainValidator(duration(timedelta(milliseconds=100), timedelta(minutes=5)))
    ] = timedelta(seconds=10)
    body_timeout: Annotated[
        timedelta, PlainValidator(duration(timedelta(milliseconds=100), timedelta(minutes=5)))
    ] = timedelta(seconds=10)
    keepalive_timeout: Annotated[
        timedelta, PlainValidator(duration(timedelta(milliseconds=100), timedelta(hours=1)))
    ] = timedelta(seconds=30)

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        seen: dict[str, int] = {}
        out = []
        for i, token in _items(raw.get("tokens")):
            digest = token.get("sha256")
            if not isinstance(digest, str):
                continue
            digest = digest.strip().lower()
            if digest in seen:
                out.append(
                    Problem(
                        ("tokens", i, "sha256"),
                        f"the same hash as tokens[{seen[digest]}]: one token, one name",
                    )
                )
            seen.setdefault(digest, i)
        return out


class WatchRule(ConfigModel):
    """What is "ours" (``match``), what a legitimate signature of ours looks like
    (``expect``, optional), and how bad a surprise is (``severity``)."""

    name: Name
    match: Annotated[Selector, PlainValidator(parse_selector)]
    expect: Annotated[Selector | None, PlainValidator(parse_optional_selector)] = None
    severity: Annotated[Severity, PlainValidator(parse_severity)]
    description: str | None = None
    alert_expected_use: bool = False

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        if raw.get("alert_expected_use") is True and raw.get("expect") is None:
            return [
                Problem(
                    ("alert_expected_use",),
                    "needs expect: without it every match is a watched_use finding",
                )
            ]
        return []

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec(self.name, self.match, self.expect, self.severity)


SinkType = Literal["webhook", "slack", "pagerduty", "alertmanager"]
_NEEDS_URL = ("webhook", "slack", "alertmanager")


class SinkSettings(ConfigModel):
    """Where alerts go. Filters (``min_severity``, ``rules``, ``kinds``) combine with AND."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("url", "url_env"),
        ("secret", "secret_env"),
        ("routing_key", "routing_key_env"),
    )

    name: Name
    type: SinkType
    url: SecretHttpUrl | None = None
    url_env: EnvName | None = None
    secret: Annotated[SecretStr | None, BeforeValidator(fields.webhook_secret)] = None
    secret_env: EnvName | None = None
    routing_key: SecretStr | None = None
    routing_key_env: EnvName | None = None
    min_severity: Annotated[Severity, PlainValidator(parse_severity)] = Severity.MEDIUM
    rules: Annotated[tuple[Name, ...], AfterValidator(_distinct)] | None = None
    kinds: Annotated[tuple[FindingKind, ...], AfterValidator(_distinct)] | None = None
    rate_limit_per_minute: int = Field(default=60, ge=1, le=10_000)
    group_window: Annotated[
        timedelta, PlainValidator(duration(timedelta(), timedelta(hours=1)))
    ] = timedelta(seconds=10)
    timeout: Annotated[
        timedelta, PlainValidator(duration(timedelta(seconds=1), timedelta(minutes=5)))
    ] = timedelta(seconds=10)

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
    sinks: Annotated[tuple[SinkSettings, ...], BeforeValidator(_none_is_empty)] = ()
    max_attempts: int = Field(default=20, ge=1, le=1000)
    max_age: Annotated[
        timedelta, PlainValidator(duration(timedelta(minutes=1), timedelta(days=30)))
    ] = timedelta(hours=24)


class HealthSettings(ConfigModel):
    """When the monitor raises ``health`` findings about itself and the logs."""

    stall_after: Annotated[timedelta, PlainValidator(duration(timedelta(minutes=1)))] = timedelta(
        minutes=15
    )
    unreachable_after: Annotated[timedelta, PlainValidator(duration(timedelta(seconds=30)))] = (
        timedelta(minutes=5)
    )
    lag_entries: int = Field(default=10_000, ge=1)
    lag_seconds: Annotated[float, _seconds(timedelta(seconds=1))] = 600.0


class Settings(ConfigModel):
    """The whole configuration, validated, frozen, secrets resolved."""

    logs: Annotated[tuple[LogSettings, ...], BeforeValidator(_none_is_empty)]
    trust: TrustSettings = Field(default_factory=TrustSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    watch: Annotated[tuple[WatchRule, ...], BeforeValidator(_none_is_empty)] = ()
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

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
        out += _unique(("logs",), raw.get("logs"), "name", "log name")
        out += _unique(("watch",), raw.get("watch"), "name", "rule name")
        out += _unique(("alerts", "sinks"), sinks, "name", "sink name")
        out += _unique(("server", "tokens"), tokens, "name", "token name")
        out += _unique(("logs",), raw.get("logs"), "url", "log URL", _normal_url)
        discovering = [i for i, log in _items(raw.get("logs")) if log.get("discover") is True]
        out += [
            Problem(("logs", i, "discover"), f"logs[{discovering[0]}] already discovers v2 shards")
            for i in discovering[1:]
        ]
        rule_names = {
            r["name"] for _, r in _items(raw.get("watch")) if isinstance(r.get("name"), str)
        }
        out += _expected_use_routes(raw.get("watch"), sinks)
        for i, sink in _items(sinks):
            wanted = sink.get("rules")
            if not isinstance(wanted, list):
                continue
            for j, rule in enumerate(wanted):
                if isinstance(rule, str) and rule not in rule_names:
                    out.append(
                        Problem(("alerts", "sinks", i, "rules", j), f"no watch rule named {rule!r}")
                    )
        return out


def _expected_use_routes(watch: Any, sinks: Any) -> list[Problem]:
    """An expected use reaches a sink only when its rule announces it and the sink lists the
    kind: one side without the other would announce nothing, silently."""
    announcing = [
        i
        for i, r in _items(watch)
        if r.get("alert_expected_use") is True and r.get("expect") is not None
    ]
    listing = [
        (i, kinds.index(EXPECTED_USE))
        for i, sink in _items(sinks)
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


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The mappings in a raw list, with their indexes; nothing if it is not a list."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, item


def _normal_url(value: str) -> str:
    return value.rstrip("/").lower()


def _unique(
    where: Loc, value: Any, key: str, what: str, normal: Any = lambda v: v
) -> list[Problem]:
    first: dict[Any, int] = {}
    out = []
    for i, item in _items(value):
        v = item.get(key)
        if not isinstance(v, str):
            continue
        v = normal(v)
        if v in first:
            at = format_loc((*where, first[v]))
            out.append(Problem((*where, i, key), f"duplicate {what}: {at} has it too"))
        first.setdefault(v, i)
    return out
