"""The documentation against the code: the configuration reference is what the settings model
generates, its GitHub-organisation example passes check-config and judges entries as it says,
every YAML snippet is a valid configuration, every relative link and anchor resolves, every
command exists, every metric documented is exported and every exported one documented, and
the webhook receiver's verification snippet accepts real deliveries and refuses forged ones."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import time
import typing
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.alerts import payloads
from monitor.api.context import ApiContext
from monitor.api.router import ApiMetrics
from monitor.cli import main
from monitor.cli.main import build_parser
from monitor.config import Settings, load_settings, parse_settings
from monitor.config.base import ConfigModel
from monitor.config.fields import Name, Shown
from monitor.config.models import LogSettings, ServerSettings, SinkSettings
from monitor.core.findings import FindingKind
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
from monitor.entries.record import (
    CertExtension,
    CertificateSigner,
    ChainStatus,
    Digest,
    KeySigner,
    SanType,
    Signer,
    SigningRecord,
    Subject,
    SubjectAltName,
)
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.engine import RuleEngine
from monitor.storage.base import operations
from monitor.storage.store import Store
from tests.prometheus_support import exposed_types
from tools import config_reference as reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MARKDOWN = [README, ROOT / "config" / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[(?:[^\]]|\][^(])*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.MULTILINE)
COMMAND = re.compile(r"(?<![\w.-])tlog-monitor ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")

SECRET = "whsec_dGhpcyBpcyB0aGUgc29jIHNlY3JldCwgbG9uZyBlbm91Z2g="
OTHER_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def fences(text: str, lang: str | None = None) -> list[str]:
    """The fenced code blocks of a Markdown text (of one language, if given)."""
    return [body for info, body in FENCE.findall(text) if lang is None or info.strip() == lang]


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every fenced block and inline code span."""
    return [*fences(text), *SPAN.findall(prose(text))]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ----------------------------------------------------------------------------- configuration


def test_the_configuration_reference_is_generated_from_the_model() -> None:
    written = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert written == reference.render(), (
        f"docs/configuration.md is out of date: run `make docs` (`.venv/bin/{reference.GENERATOR}`)"
    )


def _model_paths(model: type[pydantic.BaseModel], prefix: str) -> Iterator[str]:
    """Every option of ``model`` as a path, walked here independently of the generator."""
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if prefix:
            yield path
        for sub, is_list in _submodels(info.annotation):
            yield from _model_paths(sub, path + ("[]" if is_list else ""))


def _submodels(annotation: Any, in_list: bool = False) -> Iterator[tuple[type[Any], bool]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation, in_list
        return
    is_tuple = typing.get_origin(annotation) is tuple
    for arg in typing.get_args(annotation):
        yield from _submodels(arg, in_list or is_tuple)


def test_every_option_of_the_model_is_documented_and_nothing_else() -> None:
    model = sorted(_model_paths(Settings, ""))
    assert sorted(reference.option_paths()) == model
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", text, re.MULTILINE))
    fields = {"san", "issuer", "key_fingerprint", "cert_fingerprint", "digest", "subject"}
    fields |= {"subject_digest", "kind", "log", "extensions"}
    kinds = {str(k) for k in FindingKind}
    assert documented - fields - kinds == set(model)
    # the text of an option is its field's description
    options = {o.path: o for sec in reference.sections() for o in sec.options}
    poll = LogSettings.model_fields["poll_interval"].description
    assert poll
    assert options["logs[].poll_interval"].description == poll


def _root(section: type[ConfigModel]) -> type[ConfigModel]:
    """A settings model of one section, ``section``."""
    return pydantic.create_model(
        "Root", __base__=ConfigModel, section=(section, pydantic.Field(default_factory=section))
    )


class _Undescribed(ConfigModel):
    name: Name = pydantic.Field(description="A name.")
    count: int = 3


class _EnvDescribed(ConfigModel):
    env_pairs: typing.ClassVar[tuple[tuple[str, str], ...]] = (("token", "token_env"),)
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="A token.")
    token_env: str | None = pydantic.Field(default=None, description="Said by hand.")


class _Unshown(ConfigModel):
    when: typing.Annotated[int, pydantic.PlainValidator(int)] = pydantic.Field(
        default=0, description="When."
    )


class _StrayNote(ConfigModel):
    count: int = pydantic.Field(
        default=0, description="How many.", json_schema_extra={"note": "Not a section."}
    )


class _Item(ConfigModel):
    name: Name = pydantic.Field(description="A name.")


class _Shown(ConfigModel):
    when: typing.Annotated[int, pydantic.PlainValidator(int), Shown("a moment")] = pydantic.Field(
        default=0, ge=0, description="When."
    )
    items: tuple[_Item, ...] = pydantic.Field(
        default=(), description="Items.", json_schema_extra={"note": "Each item once."}
    )


@pytest.mark.parametrize(
    ("section", "refusal"),
    [
        (_Undescribed, r"section\.count: no description"),
        (_EnvDescribed, r"section\.token_env: an environment field's description is generated"),
        (_Unshown, r"section\.when: a plain validator without Shown"),
        (_StrayNote, r"section\.count: a note is for a field that holds a section"),
    ],
)
def test_the_reference_refuses_to_guess(section: type[ConfigModel], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        reference.sections(_root(section))


def test_the_reference_reads_what_a_field_declares() -> None:
    top, items = reference.sections(_root(_Shown))
    when, listed = top.options
    assert (when.type, when.default, when.description) == ("a moment, at least 0", "`0`", "When.")
    assert listed.type == "list, see [`section.items[]`](#sectionitems)"
    assert (items.path, items.note) == ("section.items[]", "Each item once.")
    assert [o.type for o in items.options] == ["name"]


def test_types_bounds_and_defaults_come_from_the_model() -> None:
    options = {o.path: o for s in reference.sections() for o in s.options}
    assert options["logs[].poll_interval"].type == "duration, 1s to 1h"
    assert options["logs[].poll_interval"].default == "`30s`"
    assert options["logs[].requests_per_second"].type == "number, more than 0, at most 100"
    assert options["logs[].name"].default == "required"
    assert options["alerts.sinks[].secret"].type.endswith("(secret)")
    assert options["health.lag_seconds"].type == "seconds or duration, at least 1s"
    assert options["server.tokens[].scopes"].default == "`[read]`"
    assert "`password`" in options["database.password_env"].description
    assert options["server.tokens"].type.startswith("list, see [`server.tokens[]`]")


def test_main_writes_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    assert reference.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == reference.render()
    assert reference.main(["a", "b"]) == 2


# ----------------------------------------------------------------------------- the GitHub example


def _environment(text: str) -> dict[str, str]:
    """A value for every ``X_env: NAME`` of a YAML text, of the shape X needs."""
    values = {
        "sha256": hashlib.sha256(b"a token").hexdigest(),
        "secret": SECRET,
        "url": "https://hooks.example.com/services/T0/B0/XYZ",
        "password": "correct horse",
        "routing_key": "R0UT1NGK3Y",
    }
    return {name: values[field] for field, name in re.findall(r"(\w+)_env: ([A-Za-z_][\w]*)", text)}


def github_example() -> str:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    after = text.split("<!-- github-org-example -->", 1)[1]
    (block,) = fences(after, "yaml")[:1]
    return block


def test_the_github_example_passes_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = github_example()
    assert block == reference.GITHUB_ORG_EXAMPLE
    path = tmp_path / "acme.yaml"
    path.write_text(block, encoding="utf-8")
    environ = _environment(block)
    assert set(environ) == {
        "TLOG_DB_PASSWORD",
        "SOC_TOKEN_SHA256",
        "PROMETHEUS_TOKEN_SHA256",
        "SOC_WEBHOOK_SECRET",
        "PAGERDUTY_ROUTING_KEY",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), out
    assert out.startswith(f"config: {path}: OK\n")
    assert "rules: 4" in out.splitlines()
    for value in environ.values():
        assert value not in out


GHA = "https://token.actions.githubusercontent.com"
ACME_ID = "4242421"
RELEASE_KEY = "sha256:0ab6e1a64c8e4fb0e0c3cf1ea4a9a6f8e7f2b11e8a5e0e5c1d93f7c0b4a2d6e1"


def _ext(name: str, value: str) -> CertExtension:
    return CertExtension(FULCIO_EXTENSION_OIDS[name], name, value)


def gha(
    *,
    repo: str = "acme/app",
    workflow: str = "release.yml",
    ref: str = "refs/tags/v1.4.2",
    runner: str = "github-hosted",
    owner_id: str = ACME_ID,
    chain: ChainStatus = ChainStatus.VERIFIED,
) -> CertificateSigner:
    """A Fulcio certificate of a GitHub Actions workflow run, as the parser reads it."""
    owner = repo.split("/", maxsplit=1)[0]
    san = f"https://github.com/{repo}/.github/workflows/{workflow}@{ref}"
    exts = {
        "issuer": GHA,
        "build-signer-uri": san,
        "runner-environment": runner,
        "source-repository-uri": f"https://github.com/{repo}",
        "source-repository-ref": ref,
        "source-repository-owner-uri": f"https://github.com/{owner}",
        "source-repository-owner-identifier": owner_id,
    }
    return _cert(SubjectAltName(SanType.URI, san), GHA, exts, chain)


def _cert(
    san: SubjectAltName, issuer: str, exts: dict[str, str], chain: ChainStatus
) -> CertificateSigner:
    return CertificateSigner(
        sans=(san,),
        issuer=issuer,
        extensions=tuple(_ext(k, v) for k, v in exts.items()),
        serial="01",
        not_before=datetime(2025, 6, 1, tzinfo=UTC),
        not_after=datetime(2025, 6, 1, 0, 10, tzinfo=UTC),
        issuer_dn="O=sigstore.dev, CN=sigstore-intermediate",
        subject_dn="",
        fingerprint="sha256:" + "c0" * 32,
        key=KeySigner("ecdsa", "sha256:" + "d1" * 32, 256, "P-256"),
        chain=chain,
    )


def record(signer: Signer, *, image: str | None = None) -> SigningRecord:
    subjects = (Subject(image, (Digest("sha256", "ab" * 32),)),) if image else ()
    return SigningRecord(
        log="rekor",
        index=7,
        kind="intoto" if image else "hashedrekord",
        api_version="0.0.2" if image else "0.0.1",
        signers=(signer,),
        artifact_digests=() if image else (Digest("sha256", "ef" * 32),),
        subjects=subjects,
    )


def judged(engine: RuleEngine, rec: SigningRecord) -> dict[str, tuple[str, set[str]]]:
    """Rule -> (finding kind, the expect fields it failed)."""
    return {str(f.rule): (str(f.kind), {u.field for u in f.unmet}) for f in engine.evaluate(rec)}


def test_the_github_example_judges_entries_as_it_says(tmp_path: Path) -> None:
    block = github_example()
    path = tmp_path / "acme.yaml"
    path.write_text(block, encoding="utf-8")
    engine = RuleEngine.compile(load_settings(path, environ=_environment(block)).rules)
    expected = ("expected_use", set[str]())

    assert judged(engine, record(gha())) == {"acme-workflows": expected}
    assert judged(engine, record(gha(workflow="debug.yml", ref="refs/heads/patch-1"))) == {
        "acme-workflows": (
            "unexpected_signer",
            {"ext:build-signer-uri", "ext:source-repository-ref"},
        )
    }
    assert judged(engine, record(gha(runner="self-hosted"))) == {
        "acme-workflows": ("unexpected_signer", {"ext:runner-environment"})
    }
    # the organisation's name, registered again by someone else after a rename
    assert judged(engine, record(gha(owner_id="9999999"))) == {
        "acme-workflows": ("unexpected_signer", {"ext:source-repository-owner-identifier"})
    }
    # a certificate made to look like Fulcio's, that does not chain to it
    assert judged(engine, record(gha(chain=ChainStatus.UNTRUSTED))) == {
        "acme-workflows": ("unexpected_signer", {"fulcio_chain"})
    }
    # the image, attested by the release workflow, then by another organisation's workflow
    assert judged(engine, record(gha(), image="ghcr.io/acme/app")) == {
        "acme-workflows": expected,
        "acme-images": expected,
    }
    stranger = gha(repo="mallory/tools", workflow="build.yml", owner_id="1")
    assert judged(engine, record(stranger, image="ghcr.io/acme/app")) == {
        "acme-images": (
            "unexpected_signer",
            {"ext:source-repository-owner-identifier", "ext:build-signer-uri"},
        )
    }
    # any use of the release key
    key = KeySigner("ecdsa", RELEASE_KEY, 256, "P-256")
    assert judged(engine, record(key)) == {"acme-release-key": ("watched_use", set())}
    # a maintainer's address, verified by Google, then by another identity provider
    google = _cert(
        SubjectAltName(SanType.EMAIL, "ana@acme.com"),
        "https://accounts.google.com",
        {"issuer": "https://accounts.google.com"},
        ChainStatus.VERIFIED,
    )
    assert judged(engine, record(google)) == {"acme-maintainers": expected}
    other = replace(google, issuer="https://github.com/login/oauth")
    assert judged(engine, record(other)) == {"acme-maintainers": ("unexpected_signer", {"issuer"})}
    # nothing of acme's
    assert judged(engine, record(gha(repo="other/app", owner_id="5"))) == {}


def yaml_snippets() -> Iterator[Any]:
    for path in MARKDOWN:
        for n, block in enumerate(fences(path.read_text(encoding="utf-8"), "yaml")):
            where = f"{rel(path)}, YAML block {n + 1}"
            yield pytest.param(where, block, id=where)


MINIMAL_LOGS = [{"name": "rekor", "api": "v1", "url": "https://rekor.sigstore.dev"}]


@pytest.mark.parametrize(("where", "block"), list(yaml_snippets()))
def test_every_yaml_snippet_is_a_valid_configuration(where: str, block: str) -> None:
    """Fragments (a `watch:` or a `database:` section) are checked with one log added."""
    doc = yaml.safe_load(block)
    assert isinstance(doc, dict), where
    doc.setdefault("logs", MINIMAL_LOGS)
    parse_settings(yaml.safe_dump(doc, sort_keys=False), where, environ=_environment(block))


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
