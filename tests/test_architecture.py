"""The package's layers: every module of ``monitor`` imports only from its own package and
from the packages of the layers below it (imports inside functions count too), never from the
repository's tools, tests or benchmarks.

``LAYERS`` is the one statement of the layering, bottom first. Packages that share a layer
are independent: neither imports the other. The package root (``monitor``, its version) is
below everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),  # errors, decoding, escaping, times, metrics, findings, log status, image refs
    ("tlog",),  # Merkle trees, signed notes, checkpoints, tiles, proofs
    ("trust",),  # the trusted root and signing config, TUF
    ("entries",),  # entry bodies into signing records
    ("rules",),  # watch rules and their engine
    ("imagesig",),  # container image signatures and attestations, verified and judged
    ("config",),  # the YAML configuration
    ("logclient",),  # Rekor v1 and v2 clients
    ("registry",),  # container registries: tags, manifests, signatures attached
    ("bundles", "images", "storage"),  # evidence users hold; checking images; the database
    ("alerts",),  # routing, payloads, signing, delivery
    ("api",),  # the HTTP API, /metrics, health endpoints
    ("console",),  # the web console under /ui/, over the API's context and tokens
    ("daemon", "sim"),  # the monitor's passes and services; the log simulator
    ("demo",),  # the offline demo
    ("cli",),  # the command line
)
RANK: Mapping[str, int] = {p: i for i, layer in enumerate(LAYERS) for p in layer}
# the repository's other Python: nothing installed may need them
OUTSIDE = frozenset({"tools", "tests", "bench"})


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module or name) for every import of ``monitor.*`` in ``source``,
    wherever it stands; relative imports resolved against ``module``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == "monitor":  # ``from monitor import x``: x may be a package
                for alias in node.names:
                    yield node.lineno, f"monitor.{alias.name}"
            else:
                yield node.lineno, target


def package_of(name: str) -> str | None:
    """The top-level package of a dotted ``monitor`` name; None for the root itself."""
    parts = name.split(".")
    if parts[0] != "monitor" or len(parts) < 2 or parts[1].startswith("__"):
        return None
    return parts[1]


def violations(modules: Mapping[str, tuple[str, bool]]) -> list[str]:
    """What breaks the layering in ``modules`` (name -> (source, is a package))."""
    found = []
    for module, (source, is_package) in sorted(modules.items()):
        own = package_of(module)
        if own is None:
            continue  # the root: its version only
        if own not in RANK:
            found.append(f"{module}: package {own!r} has no layer in LAYERS")
            continue
        for line, target in imports_of(module, source, is_package=is_package):
            if target.split(".")[0] in OUTSIDE:
                found.append(f"{module}:{line} imports {target}, outside the package")
                continue
            theirs = package_of(target)
            if target.split(".")[0] != "monitor" or theirs is None or theirs == own:
                continue
            if theirs not in RANK:
                found.append(f"{module}:{line} imports {target}, of no layer")
            elif RANK[theirs] >= RANK[own]:
                where = "a higher layer" if RANK[theirs] > RANK[own] else "the same layer"
                found.append(f"{module}:{line} imports {target}, of {where} ({theirs})")
    return found


def package_modules() -> dict[str, tuple[str, bool]]:
    return {
        module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_module_imports_only_its_layer_and_below() -> None:
    modules = package_modules()
    assert len(modules) > 100
    assert violations(modules) == []


def test_every_package_is_in_one_layer_and_every_layer_exists() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "modules at the package root belong in a layer's package"
    assert sorted(packages) == sorted(RANK)
    assert len(RANK) == sum(len(layer) for layer in LAYERS), "a package in two layers"


def test_every_package_says_what_it_is() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.parent.name}/__init__.py has no docstring"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (  # a layer importing one above it
            "monitor.core.findings",
            "from monitor.rules.spec import Severity\n",
            ["monitor.core.findings:1 imports monitor.rules.spec, of a higher layer (rules)"],
        ),
        (  # inside a function, as ``import``
            "monitor.api.logs",
            "def f():\n    import monitor.daemon.health\n",
            ["monitor.api.logs:2 imports monitor.daemon.health, of a higher layer (daemon)"],
        ),
        (  # packages of one layer are independent
            "monitor.storage.store",
            "from monitor.bundles import parse\n",
            ["monitor.storage.store:1 imports monitor.bundles, of the same layer (bundles)"],
        ),
        (  # a relative import, and ``from monitor import package``
            "monitor.tlog.merkle",
            "from ..trust import root\nfrom monitor import alerts, __version__\n",
            [
                "monitor.tlog.merkle:1 imports monitor.trust, of a higher layer (trust)",
                "monitor.tlog.merkle:2 imports monitor.alerts, of a higher layer (alerts)",
            ],
        ),
        (  # a package nobody placed
            "monitor.extras.thing",
            "from monitor.core.errors import MonitorError\n",
            ["monitor.extras.thing: package 'extras' has no layer in LAYERS"],
        ),
        (  # the tools that write generated files are not part of the package
            "monitor.config.models",
            "from tools.config_reference import render\n",
            ["monitor.config.models:1 imports tools.config_reference, outside the package"],
        ),
        (  # downward, own package and the root: allowed
            "monitor.daemon.service",
            "from monitor import __version__\nfrom monitor.daemon import catchup\n"
            "from monitor.api import ApiServer\nfrom . import tailer\nimport json\n",
            [],
        ),
    ],
)
def test_an_import_against_the_layers_is_named(
    module: str, source: str, expected: list[str]
) -> None:
    assert violations({module: (source, False)}) == expected


def _loaded(statements: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statements``."""
    code = f"import sys\n{statements}\nprint('\\n'.join(sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True
    )
    return set(out.stdout.split())


def test_the_command_line_loads_sigstore_only_to_verify_images() -> None:
    """sigstore-python takes about 50 MB in every process that loads it: only checking images
    may load it."""
    loaded = _loaded("import monitor.cli.main, monitor.daemon.service, monitor.images")
    assert not {m for m in loaded if m.startswith("sigstore")}
    assert "sigstore" in _loaded("from monitor.imagesig import ImageVerifier")


def test_a_parse_worker_loads_only_the_parser_and_the_rules() -> None:
    """Each parse worker is a process of its own: it must not load the database layer, the
    HTTP stack or sigstore (together about 100 MB a worker), nor the trusted root's pydantic
    models (about 15 MB: the chain checks take their CAs from ``monitor.core.authority``)."""
    loaded = _loaded("import monitor.daemon.parseworker")
    assert not loaded & {
        "sqlalchemy",
        "aiohttp",
        "sigstore",
        "pydantic",
        "monitor.trust",
        "monitor.daemon.catchup",
    }
