"""The documentation against the code: every relative link and anchor resolves, every command
exists, every metric documented is exported and every exported one documented, the webhook
receiver's verification snippet accepts real deliveries and refuses forged ones, and the
README states the grammar the parser has (the configuration reference:
``test_docs_reference``; the examples: ``test_docs_github_example``)."""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.alerts import payloads
from monitor.api.context import ApiContext
from monitor.api.router import ApiMetrics
from monitor.cli.main import build_parser
from monitor.config.models import ServerSettings, SinkSettings
from monitor.core.metrics import (
    AlertMetrics,
    ClientMetrics,
    DaemonMetrics,
    LogStatusCollector,
    StorageMetrics,
    register_runtime,
)
from monitor.daemon.imagewatch import ImageCollector
from monitor.daemon.vantage import VantageCollector
from monitor.daemon.witnessing import WitnessCollector
from monitor.storage.base import operations
from monitor.storage.store import Store
from tests.docs_support import (
    COMMAND,
    DOCS,
    HEADING,
    LINK,
    MARKDOWN,
    README,
    ROOT,
    SECRET,
    SPAN,
    code,
    fences,
    prose,
    rel,
)
from tests.prometheus_support import exposed_types

OTHER_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# ----------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    for heading in HEADING.findall(prose(path.read_text(encoding="utf-8"))):
        base = slug(heading)
        name, n = base, 0
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out.add(name)
    return out


def test_slug_is_githubs() -> None:
    assert slug("`server.tokens[]`") == "servertokens"
    assert slug("The monitor's own trust root") == "the-monitors-own-trust-root"
    assert slug("Requests, paging and errors") == "requests-paging-and-errors"


@pytest.mark.parametrize("path", MARKDOWN, ids=rel)
def test_every_relative_link_points_to_an_existing_file_and_anchor(path: Path) -> None:
    broken = []
    links = LINK.findall(prose(path.read_text(encoding="utf-8")))
    assert links, path
    for target in links:
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no such heading")
    assert broken == []


# ----------------------------------------------------------------------------- commands


def commands() -> dict[str, set[str]]:
    """Each command of the CLI parser, with its own subcommands (argparse has no public
    accessor for them)."""

    def subs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    return {name: set(subs(p)) for name, p in subs(build_parser()).items()}


def test_every_command_in_the_docs_exists() -> None:
    known = commands()
    assert {"run", "once", "demo", "check-config"} <= set(known)
    assert known["db"] == {"upgrade", "downgrade", "current"}
    unknown = []
    seen = set()
    for path in MARKDOWN:
        for snippet in code(path.read_text(encoding="utf-8")):
            for command, sub in COMMAND.findall(snippet):
                seen.add(command)
                if command not in known:
                    unknown.append(f"{rel(path)}: tlog-monitor {command}")
                elif known[command] and sub and sub not in known[command]:
                    unknown.append(f"{rel(path)}: tlog-monitor {command} {sub}")
    assert unknown == []
    # the README's table names every command
    assert seen >= set(known)


# ----------------------------------------------------------------------------- metrics


def exposition(tmp_path: Path) -> tuple[str, set[str]]:
    """The text exposition of every metric the daemon and its API register, and the family
    names the registry collects."""
    registry = CollectorRegistry()
    register_runtime(registry)
    ClientMetrics(registry)
    DaemonMetrics(registry)
    StorageMetrics(registry)
    AlertMetrics(registry)
    registry.register(LogStatusCollector(list))
    registry.register(WitnessCollector(list))
    registry.register(VantageCollector(list))
    registry.register(ImageCollector(lambda: None))

    async def api_metrics() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        try:
            ApiMetrics(ApiContext(store, ServerSettings(), registry))
        finally:
            await store.close()

    asyncio.run(api_metrics())
    families = {m.name for m in registry.collect()}
    return generate_latest(registry).decode(), families


def test_every_metric_is_documented_and_every_documented_one_exported(tmp_path: Path) -> None:
    text, families = exposition(tmp_path)
    types = exposed_types(text)
    ours = {n for n in types if n.startswith("tlog_monitor_") and not n.endswith("_created")}
    series = set(types)
    for name, kind in types.items():
        if kind == "histogram":
            series |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    doc = (DOCS / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\btlog_monitor_[a-z0-9_]*[a-z0-9]\b", doc))
    assert sorted(ours - documented) == [], "exported, not documented"
    assert sorted(documented - series) == [], "documented, not exported"
    runtime = set(re.findall(r"\b(?:process|python)_[a-z_]*[a-z]\b", doc))
    assert sorted(runtime - series) == []
    # no metric defined in the source escapes the registry built above
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "monitor").rglob("*.py"))
    defined = {f"tlog_monitor_{n}" for n in re.findall(r"\{PREFIX\}_([a-z0-9_]+)", source)}
    assert defined, "no metric found in the source"
    assert sorted(defined - families) == []


def test_every_database_operation_is_documented() -> None:
    doc = (DOCS / "metrics.md").read_text(encoding="utf-8")
    section = doc.split("Database operations (`operation`):", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", section)) == set(operations(Store).values())


# ----------------------------------------------------------------------------- webhooks


def test_the_webhook_example_is_the_schemas() -> None:
    doc = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    (example,) = [b for b in fences(doc, "json") if '"schema"' in b]
    schema: dict[str, Any] = payloads.webhook_schema()  # JSON Schema: read, not typed
    assert yaml.safe_load(example) == schema["examples"][0]


def verify_snippet() -> Any:
    doc = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    after = doc.split("<!-- verify-snippet -->", 1)[1]
    namespace: dict[str, Any] = {}
    exec(compile(fences(after, "python")[0], "docs/webhooks.md", "exec"), namespace)
    return namespace["verify"]


def _delivery(secret: str) -> payloads.Message:
    sink = SinkSettings.model_validate(
        {"name": "soc", "type": "webhook", "url": "https://soc.example/hook", "secret": secret}
    )
    now = datetime.fromtimestamp(int(time.time()), UTC)
    return payloads.build(sink, "test", [payloads.test_finding(sink, now=now)], now=now)


def test_the_documented_receiver_check_accepts_real_deliveries_and_refuses_others() -> None:
    verify = verify_snippet()
    msg = _delivery(SECRET)
    assert verify(SECRET, msg.headers, msg.body)
    assert not verify(OTHER_SECRET, msg.headers, msg.body)
    assert not verify(SECRET, msg.headers, msg.body + b" ")
    stale = {**msg.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    assert not verify(SECRET, stale, msg.body)
    for garbage in ("v2,AAAA", "v1,!!!!", "v1", ""):
        assert not verify(SECRET, {**msg.headers, "webhook-signature": garbage}, msg.body)
    # while keys rotate, each message carries a signature per secret: either key verifies it
    rotating = _delivery(f"{SECRET} {OTHER_SECRET}")
    assert len(rotating.headers["webhook-signature"].split()) == 2
    assert verify(OTHER_SECRET, rotating.headers, rotating.body)
    assert verify(SECRET, rotating.headers, rotating.body)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by its full name (``alerts dead``)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[prefix] = parser
        for name, child in subs[0].choices.items() if subs else ():
            walk(f"{prefix} {name}".strip(), child)

    walk("", build_parser())
    return out


def test_the_readme_states_the_grammar_the_parser_has() -> None:
    from monitor.storage.paging import DEFAULT_PAGE_SIZE, MAX_PAGE

    text = " ".join(prose(README.read_text(encoding="utf-8")).split())
    grammar = text.split("One grammar throughout:", 1)[1].split("A user's mistake", 1)[0]

    def named(after: str) -> set[str]:
        listed = grammar.split(after, 1)[1].split(")", 1)[0]
        return set(SPAN.findall(listed))

    def having(flag: str) -> set[str]:
        found = set()
        for name, parser in _parsers().items():
            if any(flag in a.option_strings for a in parser._actions):
                found.add(name)
        return found

    assert named("wherever a database is (") == having("--db") - {
        "db upgrade",
        "db downgrade",
        "db current",
    } | {"db"}
    assert named("JSON Lines where a command streams (") == having("--jsonl")
    assert f"pages are {DEFAULT_PAGE_SIZE} items unless `--limit N` (at most {MAX_PAGE:,})" in (
        grammar
    )
    api = " ".join((DOCS / "api.md").read_text(encoding="utf-8").split())
    assert f"{DEFAULT_PAGE_SIZE} by default (as on the command line)" in api
