"""The Dockerfile and its build context: pinned bases, a multi-stage build that installs from
the locks only, a non-root user writing to one volume, the default command and health check,
labels, no secrets, and a .dockerignore that sends only what the image copies. No container
engine runs here, so the image's properties are read from the Dockerfile itself."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from monitor.config.trustcheck import CheckedConfig, load_checked
from tests.dockerfile_support import (
    DATA_DIR,
    DEPLOY,
    DOCKERFILE,
    INSTRUCTIONS,
    PINNED,
    ROOT,
    SECRET_NAME,
    declared_args,
    final_user,
    flags,
    of,
    run,
    stage_name,
    stages,
)

IMAGE_CONFIG = DEPLOY / "monitor.yaml"  # the image's /etc/tlog-monitor/monitor.yaml
VENV_IN_IMAGE = "/opt/tlog-monitor"


def image_settings() -> CheckedConfig:
    return load_checked(str(IMAGE_CONFIG))


def test_every_base_image_is_pinned_by_digest() -> None:
    froms = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(froms) >= 2
    for args in froms:
        image = args.split()[0]
        found = PINNED.fullmatch(image)
        assert found, f"FROM {image}: not image:tag@sha256:<digest>"
        assert found["tag"] != "latest"
    # one base for both stages: the virtual environment points at the build stage's Python
    assert len({args.split()[0] for args in froms}) == 1
    first = DOCKERFILE.read_text().splitlines()[0]
    if first.lower().startswith("# syntax="):
        assert PINNED.fullmatch(first.split("=", 1)[1].strip()), "unpinned Dockerfile frontend"


def test_multi_stage_the_final_stage_copies_the_build_stage() -> None:
    all_stages = stages()
    names = [stage_name(s) for s in all_stages]
    build, final = all_stages[0], all_stages[-1]
    assert names[0] is not None
    # every --from names an earlier stage: no image slips in unpinned through COPY --from
    for index, stage in enumerate(all_stages):
        for args in of(stage, "COPY"):
            source = flags(args)[0].get("from")
            if source is not None:
                assert source in names[:index], f"COPY --from={source}: not an earlier stage"
    copied = [flags(a)[1][:-1] for a in of(final, "COPY") if flags(a)[0].get("from") == names[0]]
    assert [VENV_IN_IMAGE] in copied
    # nothing is installed, fetched or run in the shipped stage: it is files from the build
    assert not of(final, "RUN")
    assert not [i for i in INSTRUCTIONS if i.keyword == "ADD"], "ADD can fetch URLs: COPY only"
    assert any("install-locked.sh" in run for run in of(build, "RUN"))


def test_the_image_installs_with_the_locked_script_only() -> None:
    runs = [i.args for i in INSTRUCTIONS if i.keyword == "RUN"]
    installs = [r for r in runs if "scripts/install-locked.sh" in r]
    assert len(installs) == 1
    assert installs[0].rstrip().endswith(f"scripts/install-locked.sh {VENV_IN_IMAGE}")
    assert any(f"scripts/check-install.sh {VENV_IN_IMAGE}" in r for r in runs)
    other = re.compile(
        r"\bpip3?\s+install\b|\buv\s+(?:pip|sync|add|tool|run)\b|\bapt(?:-get)?\b|\bcurl\b"
        r"|\bwget\b|\beasy_install\b"
    )
    for args in runs:  # not ``run``, the imported helper
        assert not other.search(args), f"RUN {args}: installs or fetches outside the lock"


def test_runs_as_a_numeric_non_root_user() -> None:
    uid, gid = final_user()
    assert uid != 0
    assert gid != 0
    # the data directory is the user's, the rest of the filesystem is not
    final = stages()[-1]
    chowned = [flags(a) for a in of(final, "COPY") if "chown" in flags(a)[0]]
    assert [(o["chown"], w[-1]) for o, w in chowned] == [(f"{uid}:{gid}", DATA_DIR)]


def test_everything_written_goes_to_one_volume() -> None:
    final = stages()[-1]
    assert [json.loads(v) for v in of(final, "VOLUME")] == [[DATA_DIR]]
    assert of(final, "WORKDIR")[-1] == DATA_DIR  # relative paths of a config land there too
    env = dict(kv.split("=", 1) for e in of(final, "ENV") for kv in shlex.split(e))
    assert env["HOME"] == DATA_DIR
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # compiled at build time; no __pycache__
    settings = image_settings().settings
    database = make_url(settings.database.url).database
    assert database is not None
    assert database.startswith(DATA_DIR + "/")
    assert settings.trust.tuf_cache.startswith(DATA_DIR + "/")


def test_the_default_command_runs_the_shipped_configuration() -> None:
    final = stages()[-1]
    entrypoint = json.loads(of(final, "ENTRYPOINT")[-1])
    command = json.loads(of(final, "CMD")[-1])
    assert entrypoint == [f"{VENV_IN_IMAGE}/bin/tlog-monitor"]
    assert command == ["run", "--config", "/etc/tlog-monitor/monitor.yaml"]
    build_runs = " ".join(of(stages()[0], "RUN"))
    assert "install -m 0644 deploy/monitor.yaml /etc/tlog-monitor/monitor.yaml" in build_runs
    server = image_settings().settings.server
    assert server.listen.host == "0.0.0.0"  # reachable through a published port
    assert of(final, "EXPOSE") == [str(server.listen.port)]


def healthcheck_command() -> list[str]:
    (args,) = of(stages()[-1], "HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert "--timeout=" in options
    parsed: list[str] = json.loads(command)
    return parsed


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_healthcheck_asks_healthz_with_python(health_server: http.server.HTTPServer) -> None:
    command = healthcheck_command()
    assert command[0] == f"{VENV_IN_IMAGE}/bin/python"  # slim has no curl
    code = command[-1]
    port = image_settings().settings.server.listen.port
    assert f"http://127.0.0.1:{port}/healthz" in code
    # the same program, run here against a real server on another port
    local = [
        sys.executable,
        *command[1:-1],
        code.replace(f":{port}/", f":{health_server.server_port}/"),
    ]
    env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    assert run(local, env).returncode == 0
    _Health.status = 503
    try:
        assert run(local, env).returncode != 0
    finally:
        _Health.status = 200
    health_server.shutdown()
    health_server.server_close()
    assert run(local, env).returncode != 0


def test_oci_labels_come_from_build_args() -> None:
    final = stages()[-1]
    labels = dict(kv.split("=", 1) for args in of(final, "LABEL") for kv in shlex.split(args))
    for key, arg in (("source", "SOURCE"), ("version", "VERSION"), ("revision", "REVISION")):
        assert labels[f"org.opencontainers.image.{key}"] == f"${{{arg}}}"
        assert arg in declared_args(final)


def test_source_date_epoch_reaches_the_install() -> None:
    build = stages()[0]
    arg = next(i for i in build if i.keyword == "ARG" and i.args == "SOURCE_DATE_EPOCH")
    install = next(i for i in build if i.keyword == "RUN" and "install-locked.sh" in i.args)
    assert arg.line < install.line


def test_no_secret_is_a_build_arg_or_environment_variable() -> None:
    names = [a.split("=", 1)[0] for a in of(INSTRUCTIONS, "ARG")]
    names += [kv.split("=", 1)[0] for e in of(INSTRUCTIONS, "ENV") for kv in shlex.split(e)]
    assert names
    assert not [n for n in names if SECRET_NAME.search(n)]
    assert not [i for i in INSTRUCTIONS if "type=secret" in i.args]  # none is needed


# ----------------------------------------------------------------------------- .dockerignore


def dockerignore() -> list[tuple[re.Pattern[str], bool]]:
    """The patterns of .dockerignore as (regex, exclude), in order: the last match decides."""
    out = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?|\[[^]]+\])", pattern):
            if part.startswith("[") and part.endswith("]"):
                regex += part  # a character class, as in Go's filepath.Match
                continue
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        out.append((re.compile(regex), exclude))
    return out


def excluded(path: str, patterns: list[tuple[re.Pattern[str], bool]]) -> bool:
    """As Docker decides: a pattern matching a directory also matches everything in it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for regex, exclude in patterns:
        if any(regex.fullmatch(p) for p in prefixes):
            result = exclude
    return result


def test_dockerignore_leaves_out_all_but_what_the_image_copies() -> None:
    patterns = dockerignore()
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".tools/bin/uv",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/monitor.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        ".env",
        "data/monitor.db",
        "tests/test_config_check.py",
        "bench/bench_parse.py",
        "deploy/compose.yaml",
        "monitor/__pycache__/aio.cpython-311.pyc",
        "monitor/stray.pyc",
    ):
        assert excluded(path, patterns), f"{path} would be sent to the builder"
    sources = [
        words[:-1]
        for args in of(stages()[0], "COPY")
        for opts, words in [flags(args)]
        if "from" not in opts
    ]
    files: list[Path] = []
    for source in (s for group in sources for s in group):
        copied = ROOT / source
        assert copied.exists(), f"COPY {source}: not in the repository"
        found = [copied] if copied.is_file() else [p for p in copied.rglob("*") if p.is_file()]
        files += [p for p in found if "__pycache__" not in p.parts]
    assert len(files) > 50
    for file in files:
        name = file.relative_to(ROOT).as_posix()
        assert not excluded(name, patterns), f"{name} is copied but left out of the context"
