"""The configuration reference (``docs/configuration.md``), generated from the settings model.

Names, types, bounds, defaults and which options are required come from the pydantic models
in ``monitor.config.models``; only the sentences that explain each option are written here.
``render()`` refuses to run when an option has no sentence or a sentence names an option the
model does not have, so the document cannot fall behind the model unnoticed (a test compares
the file with ``render()``).

Write the file with ``python -m monitor.config.reference docs/configuration.md``.
"""

from __future__ import annotations

import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AfterValidator, BeforeValidator, PlainValidator, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from monitor.config import fields, models, selectors
from monitor.config.base import ConfigModel
from monitor.config.durations import format_duration
from monitor.core.findings import FindingKind, Severity
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.spec import SIMPLE_FIELDS, Selector

__all__ = [
    "DESCRIPTIONS",
    "GITHUB_ORG_EXAMPLE",
    "SELECTOR_FIELDS",
    "main",
    "option_paths",
    "render",
    "sections",
]

GENERATOR = "python -m monitor.config.reference docs/configuration.md"

# ----------------------------------------------------------------------------- what is said

DESCRIPTIONS: Mapping[str, str] = {
    # trust
    "trust.trusted_root": "A Sigstore TrustedRoot JSON file, or `default`: the production "
    "root shipped with the package. Checkpoints, inclusion and consistency proofs and "
    "certificate chains are verified against it, so it decides what the monitor believes.",
    "trust.signing_config": "A Sigstore SigningConfig JSON file, or `default`. It says which "
    "API version each log speaks and lists the current Rekor v2 shards (`discover: true`).",
    "trust.refresh": "`none`: use the files as they are. `tuf`: fetch both from Sigstore's TUF "
    "repository at start and every `refresh_interval`, verified from the root the package "
    "ships, so that new Rekor v2 shards and key rotations arrive without a new release. With "
    "`tuf`, `trusted_root` and `signing_config` must be `default`.",
    "trust.refresh_interval": "How often to refresh with `refresh: tuf`.",
    "trust.tuf_url": "The TUF repository.",
    "trust.tuf_cache": "Where TUF metadata and targets are cached (relative to the "
    "configuration file's directory).",
    # logs
    "logs[].name": "The log's name in findings, metrics, the API and `--log` options. A "
    "discovered Rekor v2 shard is named `NAME@SHARD`, e.g. "
    "`rekor-v2@log2025-1.rekor.sigstore.dev`.",
    "logs[].api": "`v1` (the Rekor v1 REST API) or `v2` (Rekor v2, C2SP tiles). The log must "
    "be one of the trusted root, and speak the API version the signing config names for it: "
    "`check-config` checks both.",
    "logs[].url": "The log's base URL. Required for `v1`; for `v2`, give either a `url` (one "
    "shard) or `discover: true`.",
    "logs[].discover": "`v2` only: follow every Rekor v2 shard the signing config lists, new "
    "ones from their first entry. One log at most may discover.",
    "logs[].start": "Where to begin when the database holds no cursor for this log: `tip` "
    "(the current end), a log index, or `resume` (the stored cursor, else the tip). Once a "
    "cursor is stored it always wins, so no entry is ever skipped; older ranges are for "
    "`tlog-monitor backfill`.",
    "logs[].poll_interval": "How often to ask for a new checkpoint.",
    "logs[].requests_per_second": "The request budget against this log (a token bucket). The "
    "public rekor.sigstore.dev allows about 16 requests a second per client: 8 leaves room "
    "for others.",
    "logs[].burst": "Requests allowed in a burst above that rate.",
    "logs[].max_concurrency": "Requests in flight at once.",
    "logs[].timeout": "Time allowed for one request, retries not included.",
    "logs[].batch_size": "Entries fetched, verified and stored per transaction; by default "
    "1024 for Rekor v1 and 4096 (16 tiles) for Rekor v2. Larger batches catch up faster; "
    "smaller ones make each commit, and a crash, cheaper.",
    "logs[].index_all": "Also store a compact row (identity, issuer, key fingerprint, digest, "
    "index, time) for every entry, not only for those a rule matched, so that responders can "
    "ask about identities nobody was watching. Rekor v2 has no search API: this is its index.",
    "logs[].retention": "How long `index_all` rows are kept (none: forever). Only with "
    "`index_all: true`.",
    "logs[].max_entry_bytes": "The largest entry the log may serve (Rekor v1: its body and "
    "the attestation stored with it, together); an answer holding a larger one is refused, "
    "and each answer is refused as it is read once it exceeds what the entries asked for may "
    "take. Real entries take a few KB.",
    "logs[].memory_budget_bytes": "The most the log's answers may hold in memory at once "
    "(read, decoded, or waiting to be stored): fetching ahead waits rather than exceed it, "
    "so a hostile log can slow the monitor down, not exhaust its memory. Size the process "
    "from it: see the deployment guide.",
    "logs[].missing_after": "How long entries (or tiles) of a tree the log signed may stay "
    "unavailable before that is a `missing_entries` integrity failure, with the signed tree "
    "head as evidence, rather than an outage.",
    # database
    "database.url": "`sqlite+aiosqlite:///path` (relative to the configuration file's "
    "directory; four slashes before an absolute path) or "
    "`postgresql+asyncpg://user@host:5432/dbname`. "
    "`sqlite://` and `postgresql://` mean the same. Shown with any password masked.",
    "database.password": "The PostgreSQL password (not for SQLite). Better in `password_env`; "
    "or in the URL, but only once.",
    "database.pool_size": "PostgreSQL connections kept open.",
    "database.migrate_on_start": "Apply pending migrations at start. Set `false` to run "
    "`tlog-monitor db upgrade` yourself, e.g. when the monitor's database user may not alter "
    "the schema; the monitor then refuses a database that is not at the latest revision.",
    # server
    "server.listen": "Where the HTTP API, `/metrics`, `/healthz` and `/readyz` listen: "
    "`host:port`, an IPv6 host in brackets (`[::1]:9464`). Port 0 takes any free port (the "
    "daemon logs the one it got). Use `0.0.0.0:9464` in a container, behind a network policy "
    "or a TLS-terminating proxy: the monitor speaks plain HTTP.",
    "server.tokens": "Bearer tokens for the API, by SHA-256. Without any, the API answers "
    "no one (401) but the endpoints made public below.",
    "server.metrics_public": "Serve `/metrics` without a token. Otherwise a token with the "
    "`read` scope is needed.",
    "server.health_public": "Serve `/healthz` and `/readyz` without a token (for load "
    "balancers and probes; they say only whether the monitor works).",
    "server.max_page_size": "The largest page the API returns (`limit`).",
    "server.max_request_bytes": "The largest request body, and request line, accepted.",
    "server.max_connections": "The most connections open at once. A new one beyond them "
    "closes the one that has waited longest for a request (a slow or idle client); when every "
    "one is mid-request, the new one is refused with a 503. Lowered at start to a quarter of "
    "the process's open-file limit if that is less, so that a flood of connections cannot "
    "take the descriptors the log passes, the database and alert delivery need.",
    "server.header_timeout": "A request's head (request line and headers) must be complete "
    "this long after its first byte, or the connection is closed.",
    "server.body_timeout": "A request's body must be complete this long after its head, or "
    "the answer is a 408 and the connection is closed.",
    "server.keepalive_timeout": "A connection without a complete request this long after it "
    "opened, or after its last response, is closed, whatever it sends meanwhile.",
    # tokens
    "server.tokens[].name": "Who holds the token: recorded as the author when it "
    "acknowledges or resolves a finding.",
    "server.tokens[].sha256": "The SHA-256 of the token, 64 hex digits "
    '(`printf %s "$TOKEN" | sha256sum`); the token itself is never stored. Give `sha256` '
    "or `sha256_env`.",
    "server.tokens[].scopes": "`read`: query entries, findings, logs (and `/metrics` and the "
    "health endpoints when they are not public). `write`: acknowledge and resolve findings. "
    "`write` does not imply `read`.",
    # watch
    "watch[].name": "The rule's name: findings, alerts, metrics and sink filters name it.",
    "watch[].match": "Which entries are ours. An entry matches when every field of the "
    "selector has a value matching one of its patterns.",
    "watch[].expect": "What a legitimate signature of ours looks like. A matched entry that "
    "fails it is an `unexpected_signer` finding (`unexpected_key_use` for a bare key); one "
    "that meets it is `expected_use`. Without `expect` every match is a `watched_use` finding. "
    "A certificate that does not chain to a Fulcio CA of the trusted root never meets it.",
    "watch[].severity": "How bad a finding of this rule is: `info`, `low`, `medium`, `high` "
    "or `critical`. Sinks filter on it.",
    "watch[].description": "Shown to responders with every finding of the rule.",
    "watch[].alert_expected_use": "Send this rule's `expected_use` findings to the sinks that "
    "ask for them: those listing `expected_use` in their `kinds` (one at least must). Expected "
    "uses are always stored, in the state `recorded`, never in the open queue. Needs `expect`.",
    # alerts
    "alerts.sinks": "Where findings go. Each sink gets the findings that pass all of its filters.",
    "alerts.max_attempts": "Delivery attempts before a message is dead-lettered (see "
    "`tlog-monitor alerts dead`).",
    "alerts.max_age": "Age after which an undelivered message is dead-lettered.",
    # sinks
    "alerts.sinks[].name": "The sink's name, for `tlog-monitor alerts test --sink NAME`, "
    "dead letters and metrics.",
    "alerts.sinks[].type": "`webhook` (JSON of the documented schema, signed the Standard "
    "Webhooks way), `slack` (incoming webhook), `pagerduty` (Events API v2) or "
    "`alertmanager` (Prometheus Alertmanager, `POST /api/v2/alerts`).",
    "alerts.sinks[].url": "Where to deliver; required for `webhook`, `slack` and "
    "`alertmanager` (its base URL); for `pagerduty` it defaults to "
    f"`{models.PAGERDUTY_EVENTS_URL}`. Only its host is ever shown: a Slack URL is itself a "
    "secret, so prefer `url_env` there.",
    "alerts.sinks[].secret": "The Standard Webhooks signing secret, `whsec_` and base64 of 24 "
    "to 64 random bytes; several, separated by spaces, while rotating (each message then "
    "carries one signature per secret). Required for `webhook`, refused for other types. "
    "Better in `secret_env`.",
    "alerts.sinks[].routing_key": "The PagerDuty Events API v2 integration key; required for "
    "`pagerduty`, refused for other types. Better in `routing_key_env`.",
    "alerts.sinks[].min_severity": "The least severity sent.",
    "alerts.sinks[].rules": "Only findings of these rules (none: every rule); findings of no "
    "rule (integrity, health, malformed entries) pass this filter. Each name must be a rule "
    "of `watch`.",
    "alerts.sinks[].kinds": "Only these kinds of finding (none: every kind but "
    "`expected_use`). A sink takes `expected_use` findings (records of signatures a rule "
    "allows) only by listing it, and only for rules with `alert_expected_use: true` (one at "
    "least must).",
    "alerts.sinks[].rate_limit_per_minute": "At most this many messages a minute to this "
    "sink; the rest wait in the outbox, none is dropped.",
    "alerts.sinks[].group_window": "Triggers of one rule written within this window go out "
    "as one message (`0s`: each at once).",
    "alerts.sinks[].timeout": "Time allowed for one delivery request.",
    # health
    "health.stall_after": "A `log_stalled` finding when a log has had no verified progress "
    "for this long while entries are left to read, or its checkpoint has not changed for "
    "this long (not for a retired shard).",
    "health.unreachable_after": "A `log_unreachable` finding when every pass of a log has "
    "failed for this long, and a `sink_failing` finding when an alert has waited this long "
    "undelivered. `/readyz` also answers 503 for a log not verified within this time.",
    "health.lag_entries": "A `lag` finding when the monitor is more than this many entries "
    "behind a log's latest checkpoint.",
    "health.lag_seconds": "A `lag` finding when the monitor has been behind a log's latest "
    "checkpoint without interruption for this long.",
}

SECTION_NOTES: Mapping[str, str] = {
    "logs": "At least one. Each log must be one of the trusted root, so that its checkpoints "
    "can be verified.",
    "server.tokens": "Make a token and its hash with "
    "`TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')` and "
    '`printf %s "$TOKEN" | sha256sum`. Names and hashes are unique. See '
    "[the API](api.md#authentication).",
    "watch": "Rules are evaluated independently: an entry may give one finding per rule it "
    "matches. See [watch rules](#watch-rules) for selectors and patterns.",
    "alerts": "Delivery from the outbox, at least once. See [webhooks and alerting](webhooks.md).",
    "alerts.sinks": "`url`, `secret` and `routing_key` can each come from the environment "
    "instead (`url_env`, `secret_env`, `routing_key_env`).",
    "health": "Health findings resolve by themselves when the condition clears; each episode "
    "is one finding (and one alert).",
}

SELECTOR_FIELDS: Mapping[str, str] = {
    "san": "A certificate's subject alternative names, every one: e-mail, URI (a GitHub "
    "Actions workflow: `https://github.com/OWNER/REPO/.github/workflows/FILE@REF`) or Fulcio "
    "username.",
    "issuer": "A certificate's OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, else the "
    "legacy .1.1), e.g. `https://token.actions.githubusercontent.com`.",
    "key_fingerprint": "The signing key: `sha256:<hex>` of its DER SubjectPublicKeyInfo (a "
    "bare key, or a certificate's key; `openssl pkey -pubin -outform DER | sha256sum`), the "
    "OpenPGP fingerprint (lower-case hex), `SHA256:<base64>` for SSH (as `ssh-keygen -l` "
    "prints it), or the minisign key ID.",
    "cert_fingerprint": "`sha256:<hex>` of the DER certificate.",
    "digest": "What was signed: artifact digests, and the DSSE/in-toto payload hash, as "
    "`alg:hex` or bare hex.",
    "subject": "In-toto subject names, e.g. `ghcr.io/acme/app`. Known only where the "
    "statement is: Rekor v1 `intoto` entries whose attestation the log stored (see "
    "[what the log cannot show](threat-model.md#what-the-log-cannot-show)).",
    "subject_digest": "In-toto subject digests (`sha256:<hex>` or bare hex), with the same "
    "limit as `subject`.",
    "kind": "The entry kind: `hashedrekord`, `dsse`, `intoto`, `rekord`, `jar`, `rpm`, "
    "`helm`, `alpine`, `cose`, `tuf`, `rfc3161`.",
    "log": "The log's name (a discovered shard: `NAME@SHARD`).",
}

FINDING_KINDS: Mapping[FindingKind, str] = {
    FindingKind.UNEXPECTED_SIGNER: "matched `match`, failed `expect`, signed with a certificate",
    FindingKind.UNEXPECTED_KEY_USE: "the same, signed with a bare key",
    FindingKind.EXPECTED_USE: "matched `match` and met `expect`: a record, not a task, stored "
    "in the state `recorded` (never in the open queue); alerted only where the rule has "
    "`alert_expected_use` and a sink lists `expected_use` in its `kinds`",
    FindingKind.WATCHED_USE: "matched a rule without `expect`",
    FindingKind.INTEGRITY_FAILURE: "the log was caught lying (critical, no rule)",
    FindingKind.MALFORMED_ENTRY: "the log served an entry that cannot be parsed (medium, no rule)",
    FindingKind.HEALTH: "the monitor cannot fully do its job (no rule)",
}

GITHUB_ORG_EXAMPLE = """\
# The monitor for acme, a GitHub organisation (owner id 4242421) that signs with Sigstore
# from GitHub Actions. Secrets come from the environment: TLOG_DB_PASSWORD, SOC_TOKEN_SHA256,
# PROMETHEUS_TOKEN_SHA256, SOC_WEBHOOK_SECRET, PAGERDUTY_ROUTING_KEY.
logs:
  - name: rekor
    api: v1
    url: https://rekor.sigstore.dev
    start: tip
  - name: rekor-v2
    api: v2
    discover: true               # every Rekor v2 shard, new ones included
    start: tip
    index_all: true              # Rekor v2 has no search API: keep a row for every entry
    retention: 90d

database:
  url: postgresql+asyncpg://tlog_monitor@db.internal:5432/tlog_monitor
  password_env: TLOG_DB_PASSWORD

server:
  listen: 0.0.0.0:9464           # behind a network policy or a TLS proxy
  tokens:
    - name: soc
      sha256_env: SOC_TOKEN_SHA256
      scopes: [read, write]
    - name: prometheus
      sha256_env: PROMETHEUS_TOKEN_SHA256
      scopes: [read]

watch:
  # Every certificate Fulcio issues for a workflow run in any repository named acme/...
  # Only the release workflow of the repository itself, run for a version tag on GitHub's
  # runners, may sign. The numeric owner id catches a look-alike: if the organisation is
  # renamed and someone registers the old name, their certificates carry the same owner URI
  # but another id.
  - name: acme-workflows
    description: acme signs only from release.yml, on a v* tag, on GitHub-hosted runners.
    match:
      extensions:
        source-repository-owner-uri: https://github.com/acme
    expect:
      issuer: https://token.actions.githubusercontent.com
      extensions:
        source-repository-owner-identifier: "4242421"
        build-signer-uri: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
        source-repository-ref: "refs/tags/v*"
        runner-environment: github-hosted
    severity: high

  # Attestations about acme's container images, whoever made them. Only acme's release
  # workflows may attest them: provenance for ghcr.io/acme/app from any other repository or
  # workflow is a finding. (In-toto subjects are known only for Rekor v1 intoto entries.)
  - name: acme-images
    description: Images under ghcr.io/acme are attested by acme release workflows only.
    match:
      subject: "ghcr.io/acme/*"
    expect:
      issuer: https://token.actions.githubusercontent.com
      extensions:
        source-repository-owner-identifier: "4242421"
        build-signer-uri: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
    severity: critical

  # The offline release key (a cosign key pair kept in a hardware token): any use is news.
  - name: acme-release-key
    description: The offline release key signs twice a year, by hand; tell us every time.
    match:
      key_fingerprint: sha256:0ab6e1a64c8e4fb0e0c3cf1ea4a9a6f8e7f2b11e8a5e0e5c1d93f7c0b4a2d6e1
    severity: critical

  # Maintainers sign by hand with their acme.com Google accounts, and only that way.
  - name: acme-maintainers
    description: Signatures by acme.com addresses come from acme's Google Workspace.
    match:
      san: "*@acme.com"
    expect:
      issuer: https://accounts.google.com
    severity: medium

alerts:
  sinks:
    - name: soc
      type: webhook
      url: https://soc.acme.example/hooks/tlog-monitor
      secret_env: SOC_WEBHOOK_SECRET
      min_severity: medium
    - name: on-call
      type: pagerduty
      routing_key_env: PAGERDUTY_ROUTING_KEY
      min_severity: critical       # integrity failures, the release key, image provenance
"""

# ----------------------------------------------------------------------------- the model

# Validators that say what a value is; the generator refuses any it does not know, so that
# no option is ever described by a guess.
_VALIDATOR_TYPES: Mapping[Callable[..., Any], str] = {
    fields.name: "name",
    fields.env_name: "variable name",
    fields.http_url: "http(s) URL",
    fields.secret_http_url: "http(s) URL",
    fields.trust_file: "file path or `default`",
    fields.listen_address: "`host:port`",
    fields.start_point: "`tip`, `resume` or an index",
    fields.sha256_hex: "64 hex digits",
    fields.webhook_secret: "`whsec_…`, space-separated",
    models._database_url: "database URL",
    selectors.parse_selector: "[selector](#selectors)",
    selectors.parse_optional_selector: "[selector](#selectors)",
    selectors.parse_severity: "severity",
}
# Validators that only check a value (lists, emptiness): they add nothing to its type.
_CHECKS_ONLY = frozenset({"_none_is_empty", "_distinct"})

_Validator = AfterValidator | BeforeValidator | PlainValidator


@dataclass(frozen=True)
class Option:
    path: str  # e.g. logs[].poll_interval
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    path: str  # e.g. alerts.sinks
    model: type[ConfigModel]
    options: tuple[Option, ...]


def sections() -> list[Section]:
    """Every model of the configuration as a section, in file order (a list of models, such
    as ``alerts.sinks``, right after the section that holds it)."""
    out: list[Section] = []
    for name, info in models.Settings.model_fields.items():
        sub = _model_of(info.annotation)
        assert sub is not None, name  # every top-level option is a section
        out += _sections(_child(name, info.annotation), sub)
    return out


def option_paths() -> list[str]:
    """The path of every option of the model, e.g. ``alerts.sinks[].group_window``."""
    return [o.path for s in sections() for o in s.options]


def _sections(path: str, model: type[ConfigModel]) -> list[Section]:
    options: list[Option] = []
    nested: list[Section] = []
    env_of = {env: value for value, env in model.env_pairs}
    for name, info in model.model_fields.items():
        option_path = f"{path}.{name}"
        sub = _model_of(info.annotation)
        if sub is not None:
            nested += _sections(_child(option_path, info.annotation), sub)
        options.append(_option(option_path, name, info, env_of))
    return [Section(path, model, tuple(options)), *nested]


def _child(path: str, annotation: Any) -> str:
    return f"{path}[]" if typing.get_origin(_bare(annotation)) is tuple else path


def _option(path: str, name: str, info: FieldInfo, env_of: Mapping[str, str]) -> Option:
    if name in env_of:
        value = env_of[name]
        text = (
            f"The name of an environment variable holding `{value}`, read at start (unset or "
            f"empty is an error). Give `{value}` or `{name}`, not both."
        )
    else:
        text = DESCRIPTIONS.get(path, "")
        if not text:
            raise ValueError(f"{path}: no description in monitor.config.reference")
    sub = _model_of(info.annotation)
    if sub is None:
        kind = _type_of(info)
    else:
        child = _child(path, info.annotation)
        kind = "list" if child.endswith("[]") else "mapping"
        kind += f", see [`{child}`](#{_anchor(child)})"
    return Option(path, kind, _default_of(info), text)


def _model_of(annotation: Any) -> type[ConfigModel] | None:
    bare = _bare(annotation)
    if typing.get_origin(bare) is tuple:
        bare = _bare(typing.get_args(bare)[0])
    if isinstance(bare, type) and issubclass(bare, ConfigModel):
        return bare
    return None


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and without ``| None``."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _bare(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _bare(rest[0])
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _metadata(annotation: Any) -> list[Any]:
    """Every metadata item of ``annotation``, through ``| None`` and ``Annotated``."""
    out: list[Any] = []
    if typing.get_origin(annotation) is typing.Annotated:
        out += list(annotation.__metadata__)
        out += _metadata(typing.get_args(annotation)[0])
    elif _is_union(annotation):
        for arg in typing.get_args(annotation):
            out += _metadata(arg)
    return out


def _type_of(info: FieldInfo) -> str:
    metadata = [*info.metadata, *_metadata(info.annotation)]
    validators = [m for m in metadata if isinstance(m, _Validator)]
    described = [v for v in validators if v.func.__name__ not in _CHECKS_ONLY]
    bare = _bare(info.annotation)
    if typing.get_origin(bare) is tuple:
        item = typing.get_args(bare)[0]
        return f"list of {_plain_type(_bare(item), [*_metadata(item), *described])}"
    secret = " (secret)" if bare is SecretStr and described else ""
    return _plain_type(bare, described) + _bounds(metadata) + secret


_PLAIN = {bool: "boolean", int: "integer", float: "number", str: "string"}
_NAMED: tuple[tuple[type, str], ...] = (
    (ConfigModel, "mapping"),
    (Selector, "[selector](#selectors)"),
    (Severity, "severity"),
    (FindingKind, "finding kind"),
    (SecretStr, "string (secret)"),
)


def _plain_type(bare: Any, validators: Sequence[Any]) -> str:
    for v in validators:
        func = v.func
        if func in _VALIDATOR_TYPES:
            return _VALIDATOR_TYPES[func]
        limits = _duration_limits(func)
        if limits is not None:
            kind = "seconds or duration" if bare is float else "duration"
            return kind + _duration_bounds(*limits)
        if func.__name__ not in _CHECKS_ONLY:
            raise ValueError(f"unknown validator {func.__qualname__}: describe it in reference")
    if typing.get_origin(bare) is typing.Literal:
        return _either([f"`{a}`" for a in typing.get_args(bare)])
    if bare in _PLAIN:
        return _PLAIN[bare]
    for base, text in _NAMED:
        if isinstance(bare, type) and issubclass(bare, base):
            return text
    raise ValueError(f"cannot describe the type {bare!r}")


def _either(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _duration_limits(func: Callable[..., Any]) -> tuple[timedelta, timedelta | None] | None:
    """The bounds of a ``durations.duration`` validator: they live only in its closure."""
    found = inspect.getclosurevars(func).nonlocals
    if "parse" in found:  # models._seconds wraps a duration validator
        return _duration_limits(found["parse"])
    minimum, maximum = found.get("minimum"), found.get("maximum")
    if isinstance(minimum, timedelta) and (maximum is None or isinstance(maximum, timedelta)):
        return minimum, maximum
    return None


def _duration_bounds(minimum: timedelta, maximum: timedelta | None) -> str:
    low = minimum > timedelta()
    if low and maximum is not None:
        return f", {format_duration(minimum)} to {format_duration(maximum)}"
    if low:
        return f", at least {format_duration(minimum)}"
    if maximum is not None:
        return f", at most {format_duration(maximum)}"
    return ""


def _bounds(metadata: Sequence[Any]) -> str:
    low: Any = None
    high: Any = None
    above = False
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            low = m.ge
        elif isinstance(m, annotated_types.Gt):
            low, above = m.gt, True
        elif isinstance(m, annotated_types.Le):
            high = m.le
    if low is None and high is None:
        return ""
    if above:
        text = f", more than {_number(low)}"
        return text + (f", at most {_number(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f", {_number(low)} to {_number(high)}"
    if low is not None:
        return f", at least {_number(low)}"
    return f", at most {_number(high)}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _default_of(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "(its defaults)"
    value = info.default
    if value is PydanticUndefined or value is None:
        return "none"
    return f"`{_yaml_value(value)}`"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int | float):
        return _number(value).replace(",", "")
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


# ----------------------------------------------------------------------------- the document


def render() -> str:
    """``docs/configuration.md``, as the model and the sentences above make it."""
    _check_descriptions()
    parts = [
        _HEADER.format(generator=GENERATOR),
        _GITHUB_ORG.format(example=GITHUB_ORG_EXAMPLE.rstrip("\n")),
        _rules_section(),
        _sections_text(),
    ]
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def _check_descriptions() -> None:
    known = {p.removesuffix("[]") for p in option_paths()}
    unknown = sorted(set(DESCRIPTIONS) - known)
    if unknown:
        raise ValueError(f"described but not options of the model: {', '.join(unknown)}")
    notes = {s.path.removesuffix("[]") for s in sections()}
    stray = sorted(set(SECTION_NOTES) - notes)
    if stray:
        raise ValueError(f"notes for sections the model does not have: {', '.join(stray)}")
    fields_known = set(SIMPLE_FIELDS)
    if set(SELECTOR_FIELDS) != fields_known:
        raise ValueError("SELECTOR_FIELDS must describe exactly the selector fields")
    if set(FINDING_KINDS) != set(FindingKind):
        raise ValueError("FINDING_KINDS must describe exactly the finding kinds")


_HEADER = """\
# Configuration reference

<!-- Generated by `{generator}` from the settings model
     (monitor/config/models.py). Do not edit: tests/test_docs.py fails when they differ. -->

tlog-monitor reads one YAML file: `config/monitor.yaml` unless `--config FILE` says
otherwise. [`config/monitor.example.yaml`](../config/monitor.example.yaml) shows every
option with a comment. Check a file before you use it:

```sh
tlog-monitor check-config FILE
```

It reads the secrets from the environment as the daemon would, checks every log against the
trust root and prints a summary (never a secret), or every problem at once, each as
`file:line: field.path: what is wrong`, and exits 2.

- **Unknown keys are errors**: a misspelt option never falls back to its default silently.
- **Only `logs` is required.** Sections left out take their defaults.
- **Durations** are a number of seconds or a string such as `250ms`, `30s`, `5m`, `1h30m`,
  `7d`, `2w`.
- **Relative paths** (trust files, the SQLite database, the TUF cache, and their defaults)
  are relative to the directory of the configuration file, not to the working directory:
  one file names the same database whoever reads it, from wherever. `config/monitor.yaml`
  keeps its database in `data/` at the top of the repository (`../data/monitor.db`).
- **Secrets stay out of the file**: every `X_env: NAME` option reads `X` from the
  environment variable `NAME` at start (unset or empty is an error). Secrets are never
  printed: not by `check-config`, not in logs, metrics or error messages.
- **Names** of logs, rules, sinks and tokens are letters, digits, `.`, `_` and `-`, at most
  63 characters, starting with a letter or digit, and unique in their list: findings,
  metrics and URLs carry them.
"""

_GITHUB_ORG = """\
## A rule set for a GitHub organisation

A complete file for an organisation that signs its releases and images with Sigstore from
GitHub Actions (the tests check it with `tlog-monitor check-config`):

<!-- github-org-example -->
```yaml
{example}
```

What each rule catches:

- **`acme-workflows`** sees every certificate Fulcio issued for a workflow of an `acme`
  repository. A signature from another workflow or ref (a debug workflow, a run on a
  branch), from a self-hosted runner, or by a look-alike
  organisation that took over the name is an `unexpected_signer` finding naming the field
  that failed. A certificate that does not chain to a Fulcio CA of the trusted root never
  meets `expect`.
- **`acme-images`** looks at what was signed instead of who signed it: provenance or
  another attestation naming an `acme` image, made by anyone else, is a finding. It works
  where the in-toto statement is known (Rekor v1 `intoto` entries with their stored
  attestation); Rekor v1 `dsse` and Rekor v2 entries carry no subjects.
- **`acme-release-key`** has no `expect`: every use of the key is a `watched_use` finding.
- **`acme-maintainers`** accepts `acme.com` identities only as verified by Google; the same
  address verified by another identity provider is a finding.

Reusable workflows put the called workflow in the SAN and in `build-signer-uri`, and the
calling one in `build-config-uri`: a repository that builds with a shared workflow (for
example a SLSA generator) needs `build-config-uri` in `expect` for its own workflow and
`build-signer-uri` for the shared one.
"""


def _rules_section() -> str:
    names = ", ".join(f"`{n}`" for n in FULCIO_EXTENSION_OIDS)
    rows = "\n".join(f"| `{f}` | {_cell(SELECTOR_FIELDS[f])} |" for f in SIMPLE_FIELDS)
    rows += (
        "\n| `extensions` | A mapping of certificate extensions to patterns: a Fulcio "
        f"extension by name ({names}), or any extension by dotted OID. |"
    )
    kinds = "\n".join(f"| `{k}` | {_cell(FINDING_KINDS[k])} |" for k in FindingKind)
    return f"""\
## Watch rules

A rule says which entries are ours (`match`), what a legitimate signature of ours looks like
(`expect`, optional), and how bad a surprise is (`severity`).

### Selectors

`match` and `expect` are selectors: a mapping of fields to patterns. Fields combine with AND;
a list of patterns for one field with OR. `expect` is judged signer by signer: every signer
of the entry must meet it.

| Field | What it matches |
| --- | --- |
{rows}

A pattern is

- an exact string: `https://github.com/acme`;
- a glob, any string with `*`, which matches anything, `/` and newlines included:
  `https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*`;
- or a regular expression, `{{regex: "ops-[a-z]+@acme\\\\.io"}}`, anchored at both ends, in
  RE2 syntax (linear time: no rule can hang the monitor).

Digests and fingerprints compare case-insensitively in their hex part. A field the entry
does not have matches no pattern, not even `*`.

### Findings

| Kind | When |
| --- | --- |
{kinds}

Each finding names its rule, log, index, kind and severity, the values that matched and the
`expect` fields that failed (with what was expected and what the entry had), and a stable
dedup key.
"""


def _sections_text() -> str:
    out = [
        "## Options\n",
        "| Section | Type | Default | What it is |",
        "| --- | --- | --- | --- |",
    ]
    top = {s.path: s for s in sections()}
    for name, info in models.Settings.model_fields.items():
        section = top[_child(name, info.annotation)]
        kind = "list" if section.path.endswith("[]") else "mapping"
        text = _first_sentence(section.model.__doc__ or "") or _cell(SECTION_NOTES.get(name, ""))
        out.append(
            f"| [`{name}`](#{_anchor(section.path)}) | {kind} | {_default_of(info)} | "
            f"{_cell(text)} |"
        )
    for section in sections():
        out.append("")
        out += _section_text(section)
    return "\n".join(out) + "\n"


def _section_text(section: Section) -> list[str]:
    out = [f"### `{section.path}`", ""]
    doc = _docstring(section.model)
    note = SECTION_NOTES.get(section.path.removesuffix("[]"), "")
    for text in (doc, note):
        if text:
            out += [_wrap(text), ""]
    out += ["| Option | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for o in section.options:
        out.append(
            f"| `{o.path}` | {_cell(o.type)} | {_cell(o.default)} | {_cell(o.description)} |"
        )
    return out


def _anchor(path: str) -> str:
    """GitHub's anchor of a heading ``### `path` ``."""
    return re.sub(r"[^a-z0-9 _-]", "", path.lower()).replace(" ", "-")


def _docstring(model: type[ConfigModel]) -> str:
    doc = model.__doc__ or ""
    if doc == ConfigModel.__doc__:
        return ""
    return " ".join(doc.split()).replace("``", "`")


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split()).replace("``", "`")
    head = text.partition(". ")[0]
    return head.rstrip(".") + "." if text else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _wrap(text: str, width: int = 92) -> str:
    lines: list[str] = []
    line = ""
    for word in _unbreakable(text.split()):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return "\n".join(lines)


def _unbreakable(words: list[str]) -> list[str]:
    """Words, with a code span that holds spaces kept as one (a line break would show)."""
    out: list[str] = []
    for word in words:
        if out and out[-1].count("`") % 2:
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or write it to the file given."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if not args:
        sys.stdout.write(text)
        return 0
    if len(args) != 1:
        sys.stderr.write("usage: python -m monitor.config.reference [FILE]\n")
        return 2
    Path(args[0]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
