"""The container image and the deployment examples. No container engine runs here, so the
image's properties are read from the Dockerfile itself; the install procedure it shares with
CI (scripts/install-locked.sh, then scripts/check-install.sh) runs for real; and the compose
and Kubernetes examples are checked against each other, the image and the configuration
loader."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from sqlalchemy.engine import make_url

from monitor.config.models import Settings
from monitor.config.trustcheck import CheckedConfig, load_checked

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
IMAGE_CONFIG = DEPLOY / "monitor.yaml"  # the image's /etc/tlog-monitor/monitor.yaml
DATA_DIR = "/var/lib/tlog-monitor"
VENV_IN_IMAGE = "/opt/tlog-monitor"
PINNED = re.compile(r"(?P<image>[a-z0-9][a-z0-9./_-]*):(?P<tag>[\w][\w.-]*)@sha256:[0-9a-f]{64}")
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY", re.IGNORECASE)


# ----------------------------------------------------------------------------- the Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments dropped (also those inside a
    continued instruction, as Docker drops them)."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(parts).partition(" ")
            out.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    assert not parts, "the Dockerfile ends inside a continued instruction"
    return out


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())


def stages() -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            out.append([])
        assert out, f"line {ins.line}: {ins.keyword} before the first FROM"
        out[-1].append(ins)
    return out


def stage_name(stage: list[Instruction]) -> str | None:
    words = stage[0].args.split()
    return words[2] if len(words) == 3 and words[1].upper() == "AS" else None


def of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def flags(args: str) -> tuple[dict[str, str], list[str]]:
    """``--name=value`` options at the front of an instruction's arguments, and the rest."""
    words = args.split()
    opts: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        opts[name] = value
    return opts, words


def declared_args(stage: list[Instruction]) -> set[str]:
    return {a.split("=", 1)[0] for a in of(stage, "ARG")}


def final_user() -> tuple[int, int]:
    users = of(stages()[-1], "USER")
    assert users, "the final stage sets no USER: it would run as root"
    found = re.fullmatch(r"(\d+):(\d+)", users[-1])
    assert found, f"USER {users[-1]}: numeric UID:GID, so that runAsNonRoot can check it"
    return int(found[1]), int(found[2])


def run(
    command: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


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
    for run in runs:
        assert not other.search(run), f"RUN {run}: installs or fetches outside the lock"


def shell_commands(path: Path) -> list[str]:
    """A shell script's commands, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    return [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]


def test_the_install_script_checks_every_hash() -> None:
    commands = shell_commands(ROOT / "scripts" / "install-locked.sh")
    pip_installs = [c for c in commands if re.search(r"\bpip (?:install|sync)\b", c)]
    assert len(pip_installs) == 3
    for command in pip_installs:
        # the project's own wheel, built just before from this checkout, is the one exception
        own_wheel = "--no-deps" in command and "wheels[0]" in command
        assert "--require-hashes" in command or own_wheel, command
        assert "--no-build" in command or "requirements/bootstrap.txt" in command, command
    (export,) = [c for c in commands if " export " in c]
    assert "--locked" in export
    assert "--no-dev" in export
    assert "--no-hashes" not in export
    (build,) = [c for c in commands if re.search(r"\buv\S*\" build\b", c)]
    assert "--build-constraints requirements/build.txt" in build
    assert "--require-build-hashes" in build
    for name in ("bootstrap.txt", "build.txt"):
        requirements = re.split(r"\n(?=\S)", (ROOT / "requirements" / name).read_text().strip())
        for req in requirements:
            if req.startswith("#"):
                continue
            assert re.match(r"[\w.-]+==\S+", req), f"{name}: {req}"
            assert "--hash=sha256:" in req, f"{name}: {req}"


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


# ----------------------------------------------------------------------------- the install


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: mode, modification time, and content (or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = "-> " + os.readlink(path)
        elif path.is_dir():
            content = "dir"
        else:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        out[path.relative_to(root).as_posix()] = (st.st_mode, int(st.st_mtime), content)
    return out


def run_script(name: str, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(ROOT / "scripts" / name), *map(str, args)]
    return run(command, {**os.environ, "PYTHON": sys.executable, **env}, timeout=900)


@pytest.mark.online  # downloads from PyPI; .ci/run performs the same install and check
def test_locked_install_checks_out_and_is_reproducible(tmp_path: Path) -> None:
    """What CI and the image do: install from the locks, check the result; and a second
    install of the same tree at the same path is byte-for-byte the same."""
    venv = tmp_path / "venv"
    epoch = "1700000000"
    first = run_script("install-locked.sh", venv, SOURCE_DATE_EPOCH=epoch)
    assert first.returncode == 0, first.stderr
    check = run_script("check-install.sh", venv)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[0] == f"tlog-monitor {version()}"
    assert "runtime only" in check.stdout
    before = tree(venv)
    assert max(mtime for _, mtime, _ in before.values()) == int(epoch)  # no build time leaks
    assert any(name.endswith(".pyc") for name in before)  # compiled for a read-only root
    shutil.rmtree(venv)
    second = run_script("install-locked.sh", venv, SOURCE_DATE_EPOCH=epoch)
    assert second.returncode == 0, second.stderr
    after = tree(venv)
    assert after.keys() == before.keys()
    assert [n for n in before if before[n] != after[n]] == []


def version() -> str:
    text = (ROOT / "monitor" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert found
    return found[1]


def test_check_install_rejects_a_development_environment() -> None:
    # the environment running these tests: the project installed editable, pytest in it
    result = run_script("check-install.sh", sys.prefix)
    assert result.returncode != 0
    assert "check-install:" in result.stderr


def test_install_refuses_an_existing_directory(tmp_path: Path) -> None:
    result = run_script("install-locked.sh", tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr


# ----------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def write_config(tmp_path: Path, text: str, name: str = "monitor.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


MONITORS = ("monitor-a", "monitor-b")  # two replicas (config ha:)


def test_compose_services_are_pinned_and_locked_down() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {*MONITORS, "db", "prometheus"}
    for name in MONITORS:
        monitor = services[name]
        context = (DEPLOY / monitor["build"]["context"]).resolve()
        assert context == ROOT
        assert context / monitor["build"]["dockerfile"] == DOCKERFILE
        assert monitor["read_only"] is True
        assert monitor["cap_drop"] == ["ALL"]
        assert "user" not in monitor  # the image's non-root user
        assert monitor["depends_on"]["db"]["condition"] == "service_healthy"
    for name, service in services.items():
        if name not in MONITORS:
            assert PINNED.fullmatch(service["image"]), f"{name}: {service['image']}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):  # from the caller's environment, required
                assert re.fullmatch(r"\$\{(\w+):\?[^}]+\}", value), f"{name}.{key}: {value}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts missing {source}"


def test_compose_replicas_differ_only_in_name_port_and_volume() -> None:
    services = compose()["services"]
    a, b = (services[name] for name in MONITORS)
    own = {"hostname", "ports", "volumes"}
    assert {k: v for k, v in a.items() if k not in own} == {
        k: v for k, v in b.items() if k not in own
    }
    # the host name is the replica's name (ha.replica_id's default): one each
    assert [s["hostname"] for s in (a, b)] == list(MONITORS)
    assert len({p for s in (a, b) for p in s["ports"]}) == 2
    # each its own data volume (the TUF cache): two processes never write one directory
    volumes = [s["volumes"] for s in (a, b)]
    assert volumes == [[f"{name}-data:{DATA_DIR}"] for name in MONITORS]
    assert set(compose()["volumes"]) >= {f"{name}-data" for name in MONITORS}
    assert set(services["prometheus"]["depends_on"]) == set(MONITORS)


@pytest.mark.parametrize("name", MONITORS)
def test_compose_monitor_config_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    doc = compose()
    text = doc["configs"]["monitor"]["content"]
    assert "$" not in text  # compose would interpolate it
    monitor, db = doc["services"][name], doc["services"]["db"]
    variable = re.fullmatch(r"\$\{(\w+):\?.*\}", monitor["environment"]["TLOG_DB_PASSWORD"])
    assert variable
    assert db["environment"]["POSTGRES_PASSWORD"] == monitor["environment"]["TLOG_DB_PASSWORD"]
    monkeypatch.setenv("TLOG_DB_PASSWORD", "compose-test-password")
    (target,) = [c["target"] for c in monitor["configs"] if c["source"] == "monitor"]
    assert monitor["command"] == ["run", "--config", target]
    settings = load_checked(write_config(tmp_path, text)).settings
    url = make_url(settings.database.url)
    assert (url.host, url.port) == ("db", 5432)
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.database == db["environment"]["POSTGRES_DB"]
    assert settings.database.password_env == "TLOG_DB_PASSWORD"
    assert settings.server.listen.host == "0.0.0.0"
    # published on this host only, each replica on a port of its own
    (port,) = monitor["ports"]
    assert re.fullmatch(rf"127\.0\.0\.1:\d+:{settings.server.listen.port}", port), port
    assert settings.trust.tuf_cache.startswith(DATA_DIR + "/")
    # high availability on the one database, each replica named by its host name
    assert settings.ha is not None
    assert "replica_id" not in yaml.safe_load(text)["ha"]


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    doc = compose()
    text = doc["configs"]["prometheus"]["content"]
    scrape = yaml.safe_load(text)["scrape_configs"]
    assert [s["job_name"] for s in scrape] == ["tlog-monitor"]  # what alerts.yml selects
    # every replica, at the port its configuration listens on
    port = yaml.safe_load(doc["configs"]["monitor"]["content"])["server"]["listen"].split(":")[1]
    assert scrape[0]["static_configs"][0]["targets"] == [f"{m}:{port}" for m in MONITORS]
    config = write_config(tmp_path, text, "prometheus.yml")
    shutil.copy(ROOT / "config" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    result = run([promtool, "check", "config", config], dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------- Kubernetes


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_k8s_manifests_parse_with_the_expected_kinds() -> None:
    docs = manifests()
    assert Counter(d["kind"] for d in docs) == {
        "ConfigMap": 2,
        "Secret": 1,
        "Deployment": 1,
        "PodDisruptionBudget": 1,
        "Service": 2,
        "StatefulSet": 1,
        "NetworkPolicy": 1,
    }
    for doc in docs:
        assert doc["apiVersion"]
        assert doc["metadata"]["name"]
        assert "namespace" not in doc["metadata"]  # applied to the namespace of your choice


def test_k8s_secret_commits_no_value() -> None:
    secret = one("Secret", "tlog-monitor")
    assert "data" not in secret
    assert set(secret["stringData"]) == {"db-password", "api-token-sha256"}
    assert set(secret["stringData"].values()) == {""}  # empty: the monitor refuses to start


def test_k8s_monitor_runs_locked_down() -> None:
    deployment = one("Deployment", "tlog-monitor")
    pod = deployment["spec"]["template"]["spec"]
    uid, gid = final_user()
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (uid, gid, gid)
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # writable: the data directory and /tmp, nothing else
    assert {p for p, n in mounts.items() if "configMap" not in volumes[n]} == {DATA_DIR, "/tmp"}
    assert volumes[mounts["/etc/tlog-monitor"]]["configMap"]["name"] == "tlog-monitor-config"


def test_k8s_monitor_runs_three_replicas_on_separate_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(tmp_path, monkeypatch)
    assert settings.ha is not None  # replicas lead the logs by lease
    text = one("ConfigMap", "tlog-monitor-config")["data"]["monitor.yaml"]
    assert "replica_id" not in yaml.safe_load(text)["ha"]  # the host name: the pod's name
    deployment = one("Deployment", "tlog-monitor")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    # rolled one at a time, never below three ready
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    labels = spec["template"]["metadata"]["labels"]
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == labels
    # a drain takes one replica at a time
    # a takeover leaves a dead replica's logs leaderless, and so every replica unready, for up
    # to a lease_ttl: the probe must not count that as a failure
    (container,) = spec["template"]["spec"]["containers"]
    ready = container["readinessProbe"]
    span = ready["periodSeconds"] * ready["failureThreshold"]
    assert span > settings.ha.lease_ttl.total_seconds()
    budget = one("PodDisruptionBudget", "tlog-monitor")
    assert budget["spec"]["selector"] == spec["selector"]
    assert budget["spec"]["maxUnavailable"] == 1


def test_k8s_probes_and_scrape_annotations_match_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(tmp_path, monkeypatch)
    template = one("Deployment", "tlog-monitor")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == settings.server.listen.port
    assert settings.server.listen.host == "0.0.0.0"
    assert settings.server.health_public
    assert settings.server.metrics_public
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe")}
    assert {p["path"] for p in probes.values()} == {"/healthz"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in [*probes.values(), container["readinessProbe"]["httpGet"]]:
        assert probe["port"] == port["name"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    service = one("Service", "tlog-monitor")
    assert service["spec"]["selector"] == template["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def k8s_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ConfigMap's configuration, loaded with the variables the Deployment sets."""
    (container,) = one("Deployment", "tlog-monitor")["spec"]["template"]["spec"]["containers"]
    values = {"db-password": "k8s-test-password", "api-token-sha256": "ab" * 32}
    for item in container["env"]:
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "tlog-monitor"
        monkeypatch.setenv(item["name"], values[ref["key"]])
    text = one("ConfigMap", "tlog-monitor-config")["data"]["monitor.yaml"]
    return load_checked(write_config(tmp_path, text)).settings


def test_k8s_monitor_config_reaches_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(tmp_path, monkeypatch)
    db = one("StatefulSet", "tlog-monitor-db")
    service = one("Service", "tlog-monitor-db")
    (postgres,) = db["spec"]["template"]["spec"]["containers"]
    assert PINNED.fullmatch(postgres["image"]), postgres["image"]
    env = {e["name"]: e for e in postgres["env"]}
    url = make_url(settings.database.url)
    assert url.host == service["metadata"]["name"] == db["spec"]["serviceName"]
    assert url.port == service["spec"]["ports"][0]["port"]
    assert url.username == env["POSTGRES_USER"]["value"]
    assert url.database == env["POSTGRES_DB"]["value"]
    # the same secret key on both sides
    (monitor,) = one("Deployment", "tlog-monitor")["spec"]["template"]["spec"]["containers"]
    monitor_env = {e["name"]: e for e in monitor["env"]}
    assert settings.database.password_env is not None
    assert (
        monitor_env[settings.database.password_env]["valueFrom"]
        == env["POSTGRES_PASSWORD"]["valueFrom"]
    )
    assert service["spec"]["selector"] == db["spec"]["template"]["metadata"]["labels"]
    policy = one("NetworkPolicy", "tlog-monitor-db")
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed == one("Deployment", "tlog-monitor")["spec"]["selector"]["matchLabels"]
    assert [t.name for t in settings.server.tokens] == ["responders"]
    assert settings.trust.tuf_cache.startswith(DATA_DIR + "/")


def relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus relabelling (keep and replace), with RE2 as Prometheus uses it."""
    labels = dict(labels)
    for rule in rules:
        value = ";".join(labels.get(s, "") for s in rule["source_labels"])
        found = re2.compile(f"^(?:{rule.get('regex', '(.*)')})$").match(value)
        action = rule.get("action", "replace")
        if action == "keep":
            if not found:
                return None
        elif action == "replace":
            if found:
                replacement = re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
                labels[rule["target_label"]] = found.expand(replacement)
        else:
            raise AssertionError(f"relabel action {action} not modelled")
    return labels


def pod_labels(template: dict[str, Any], address: str) -> dict[str, str]:
    """The labels Prometheus's Kubernetes pod discovery gives a pod of ``template``."""

    def clean(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9_]", "_", name)

    meta = template["metadata"]
    labels = {"__address__": address, "__metrics_path__": "/metrics"}
    labels |= {f"__meta_kubernetes_pod_label_{clean(k)}": v for k, v in meta["labels"].items()}
    labels |= {
        f"__meta_kubernetes_pod_annotation_{clean(k)}": v
        for k, v in meta.get("annotations", {}).items()
    }
    return labels | {"__meta_kubernetes_namespace": "monitoring", "__meta_kubernetes_pod_name": "p"}


def test_k8s_prometheus_job_finds_the_monitor_only() -> None:
    text = one("ConfigMap", "tlog-monitor-prometheus")["data"]["prometheus.yml"]
    (job,) = yaml.safe_load(text)["scrape_configs"]
    assert job["job_name"] == "tlog-monitor"  # what config/prometheus/alerts.yml selects
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    template = one("Deployment", "tlog-monitor")["spec"]["template"]
    target = relabel(job["relabel_configs"], pod_labels(template, "10.1.2.3:8080"))
    assert target is not None
    assert target["__address__"] == "10.1.2.3:9464"  # the annotated port, not the discovered one
    assert target["__metrics_path__"] == "/metrics"
    assert (target["namespace"], target["pod"]) == ("monitoring", "p")
    db = one("StatefulSet", "tlog-monitor-db")["spec"]["template"]
    assert relabel(job["relabel_configs"], pod_labels(db, "10.1.2.4:5432")) is None
