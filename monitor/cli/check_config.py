"""``tlog-monitor check-config``: validate a configuration file and summarise it.

Exit 0 with a summary when the file is usable (and a warning on stderr for what it leaves
undone: no watch rules, no sinks); exit 2 with every problem on stderr, one a line as
``<file>:<line>: <field.path>: <what is wrong>``, when it is not. ``--json``: one document
either way, on stdout. Secrets (webhook
secrets, token hashes, passwords, sink URLs) are never printed: sinks show their host only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from monitor.cli.options import add_json
from monitor.config.durations import format_duration
from monitor.config.load import DEFAULT_CONFIG_PATH
from monitor.config.problems import format_loc
from monitor.config.server import read_cosign_key

if TYPE_CHECKING:
    from monitor.config.models import ServerSettings, Settings, SinkSettings, WatchRule
    from monitor.config.trustcheck import ResolvedLog
    from monitor.rules.spec import Selector
    from monitor.trust import TrustRoot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a configuration file and print a summary",
        description=(
            "Validate a configuration file (secrets are read from the environment as the "
            "daemon would) and check its logs against the trust root. Prints a summary and "
            "what the file leaves undone (no watch rules, no sinks), or every problem with "
            "its line (exit 2). The file is given as FILE or --config FILE."
        ),
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="FILE",
        help=f"the configuration file (default: {DEFAULT_CONFIG_PATH})",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="the configuration file, as with every other command (the same as FILE)",
    )
    add_json(p)
    p.set_defaults(handler=run)


def _path(args: argparse.Namespace) -> str:
    from monitor.core.errors import ConfigError

    if args.path and args.config and args.path != args.config:
        raise ConfigError(f"two files given ({args.path} and --config {args.config}): give one")
    return str(args.path or args.config or DEFAULT_CONFIG_PATH)


def run(args: argparse.Namespace) -> int:
    from monitor.config.advice import warnings
    from monitor.config.problems import ConfigFileError
    from monitor.config.trustcheck import load_checked

    path = _path(args)
    try:
        checked = load_checked(path)
    except ConfigFileError as e:
        if not args.json:
            raise
        problems = [
            {"line": p.line, "path": format_loc(p.loc) or None, "message": p.message}
            for p in e.problems
        ]
        print(json.dumps({"config": path, "ok": False, "problems": problems}, indent=2))
        return 2
    settings, trust, resolved = checked.settings, checked.trust, checked.logs
    advice = warnings(settings)
    if args.json:
        doc = {"config": path, "ok": True, **summary_json(settings, trust, resolved)}
        print(json.dumps({**doc, "warnings": advice}, indent=2))
        return 0
    print("\n".join(summary(path, settings, trust, resolved)))
    for line in advice:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def summary_json(
    settings: Settings, trust: TrustRoot, resolved: tuple[ResolvedLog, ...]
) -> dict[str, Any]:
    """What the summary says, as data (no secret: sinks by host, tokens by name)."""
    db = settings.database
    server = settings.server
    return {
        "trust": {
            "trusted_root": settings.trust.trusted_root,
            "signing_config": settings.trust.signing_config,
            "refresh": settings.trust.refresh,
            "logs": len(trust.logs),
            "fulcio_cas": len(trust.certificate_authorities),
        },
        "logs": [
            {
                "name": item.config.name,
                "api": item.config.api,
                "urls": [t.base_url for t in item.logs],
                "start": item.config.start,
                "index_all": item.config.index_all,
            }
            for item in resolved
        ],
        "database": {"url": db.masked_url(), "migrate_on_start": db.migrate_on_start},
        "ha": None
        if settings.ha is None
        else {
            "replica_id": settings.ha.replica_id,
            "lease_ttl": settings.ha.lease_ttl.total_seconds(),
        },
        "server": {
            "listen": str(server.listen),
            "tokens": [{"name": t.name, "scopes": list(t.scopes)} for t in server.tokens],
            "metrics_public": server.metrics_public,
            "health_public": server.health_public,
            "cosign_vkey": _cosign_vkey(server),
        },
        "rules": [{"name": r.name, "severity": str(r.severity)} for r in settings.watch],
        "sinks": [
            {"name": s.name, "type": s.type, "host": s.host, "min_severity": str(s.min_severity)}
            for s in settings.alerts.sinks
        ],
    }


def summary(
    path: str, settings: Settings, trust: TrustRoot, resolved: tuple[ResolvedLog, ...]
) -> list[str]:
    """The lines check-config prints: everything but secrets."""

    sources = settings.trust
    refresh = (
        f"refreshed over TUF from {sources.tuf_url} every "
        f"{format_duration(sources.refresh_interval)}"
        if sources.refresh == "tuf"
        else "no refresh"
    )
    lines = [
        f"config: {path}: OK",
        f"trust: trusted root {_file(sources.trusted_root)}, signing config "
        f"{_file(sources.signing_config)}; {refresh}; {len(trust.logs)} logs, "
        f"{len(trust.certificate_authorities)} Fulcio CAs",
        f"logs: {len(resolved)}",
    ]
    for item in resolved:
        log = item.config
        if log.discover:
            shards = ", ".join(t.base_url for t in item.logs)
            where = f"discover v2 shards from the signing config: {shards}"
        else:
            where = log.url or ""
        lines.append(
            f"  {log.name}: api {log.api}, {where}; start {log.start}, "
            f"poll every {format_duration(log.poll_interval)}, "
            f"{log.requests_per_second:g} requests/s" + (", index_all" if log.index_all else "")
        )
    db = settings.database
    password = f", password from ${db.password_env}" if db.password_env else ""
    migrate = "migrations applied at start" if db.migrate_on_start else "no migration at start"
    lines.append(f"database: {db.masked_url()}{password}; {migrate}")
    ha = settings.ha
    if ha is not None:
        lines.append(
            f"ha: replica {ha.replica_id}, lease {format_duration(ha.lease_ttl)} (each log "
            "led by one replica at a time)"
        )
    server = settings.server
    tokens = ", ".join(f"{t.name} ({'+'.join(t.scopes)})" for t in server.tokens) or "none"
    lines.append(
        f"server: listen {server.listen}; tokens: {tokens}; "
        f"metrics {'public' if server.metrics_public else 'need a token'}, "
        f"health {'public' if server.health_public else 'needs a token'}"
    )
    vkey = _cosign_vkey(server)
    if vkey is not None:
        lines.append(f"server: cosigns published checkpoints as {vkey}")
    lines.append(f"rules: {len(settings.watch)}")
    lines += [line for rule in settings.watch for line in _rule(rule)]
    lines.append(f"sinks: {len(settings.alerts.sinks)}")
    lines += [_sink(sink) for sink in settings.alerts.sinks]
    return lines


def _rule(rule: WatchRule) -> list[str]:
    out = [f"  {rule.name}: severity {rule.severity}"]
    out.append(f"    match:  {_selector(rule.match)}")
    if rule.expect is not None:
        out.append(f"    expect: {_selector(rule.expect)}")
    return out


def _selector(selector: Selector) -> str:
    return "; ".join(
        f"{field} = {' | '.join(str(p) for p in patterns)}" for field, patterns in selector.fields
    )


def _file(value: str) -> str:
    return "default (Sigstore production)" if value == "default" else value


def _sink(sink: SinkSettings) -> str:
    line = f"  {sink.name}: {sink.type} to {sink.host}"
    if sink.url_env:
        line += f" (url from ${sink.url_env})"
    line += f", min severity {sink.min_severity}"
    if sink.secret_env:
        line += f", signed with the secret from ${sink.secret_env}"
    elif sink.secret is not None:
        line += ", signed with the secret in the file"
    if sink.routing_key_env:
        line += f", routing key from ${sink.routing_key_env}"
    if sink.rules is not None:
        line += f", rules {', '.join(sink.rules)}"
    if sink.kinds is not None:
        line += f", kinds {', '.join(sink.kinds)}"
    return line


def _cosign_vkey(server: ServerSettings) -> str | None:
    """The verifier key of the monitor's cosigning key (public: peers configure it)."""
    return None if server.cosign_key is None else read_cosign_key(server.cosign_key).vkey()
