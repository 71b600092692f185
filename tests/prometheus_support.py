"""Shared by the dashboard and scrape tests: the shipped Grafana dashboard and alerting rules
read as PromQL, the metric names they use, and a real Prometheus server on loopback.

``promtool`` and ``prometheus`` come from the system. Where one is missing its tests are
skipped locally, but FAIL when ``CI`` is set: CI must run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "config" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"
ALERTS_TEST = RULES_DIR / "alerts.test.yml"
PROMETHEUS_YML = RULES_DIR / "prometheus.yml"
DASHBOARD = ROOT / "config" / "grafana" / "tlog-monitor.json"
JOB = "tlog-monitor"

# Values for Grafana's variables that keep every expression valid PromQL and selecting all
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$log": ".*",
    "$sink": ".*",
}
METRIC = re.compile(r"(?<![a-zA-Z0-9_:])(?:tlog_monitor|process|python)_[a-z0-9_]+")
SERIES_SUFFIXES = {"_bucket": ("histogram",), "_count": ("histogram", "summary")}
SERIES_SUFFIXES["_sum"] = SERIES_SUFFIXES["_count"]


def require_tool(name: str) -> str:
    """The path of a Prometheus program; skips the test without it (fails under CI)."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (the Debian package prometheus has it)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the Prometheus tests", pytrace=False)
    pytest.skip(message)


# ----------------------------------------------------------------------------- the files


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query target, as written (with Grafana variables)."""
    return [
        (panel["title"], target.get("expr", ""))
        for panel in panels(doc)
        for target in panel.get("targets", [])
    ]


def variable_queries(doc: dict[str, Any]) -> dict[str, str]:
    """The query of each query variable, e.g. ``label_values(tlog_monitor_cursor, log)``."""
    return {v["name"]: v["definition"] for v in doc["templating"]["list"] if v["type"] == "query"}


def to_promql(expr: str) -> str:
    """A dashboard expr with Grafana's variables replaced, as Prometheus would get it."""
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, each with the name of its group under ``group``."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [{**rule, "group": group["name"]} for group in doc["groups"] for rule in group["rules"]]


def alert_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    return tests


def metric_names(text: str) -> set[str]:
    return set(METRIC.findall(text))


def used_metric_names() -> dict[str, set[str]]:
    """Metric names each shipped file uses in its queries (and the rule tests in their input
    series, which must look like what the daemon exports)."""
    doc = dashboard()
    return {
        "dashboard": metric_names(
            "\n".join([*(e for _, e in dashboard_exprs(doc)), *variable_queries(doc).values()])
        ),
        "alerts.yml": metric_names("\n".join(r["expr"] for r in alert_rules())),
        "alerts.test.yml": metric_names(
            "\n".join(s["series"] for t in alert_tests() for s in t["input_series"])
        ),
    }


def exposed_types(exposition: str) -> dict[str, str]:
    """Name to type of every metric family of a text exposition (its ``# TYPE`` lines, named
    as series are: counters with ``_total``, infos with ``_info``)."""
    out = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out[name] = kind
    return out


def unknown_names(used: set[str], types: dict[str, str]) -> set[str]:
    """Names in ``used`` that are not series of the exposition: not a family, or a
    ``_bucket``/``_count``/``_sum`` of a family of another type, or a histogram's bare name
    (which has no series)."""
    out = set()
    for name in used:
        kind = types.get(name)
        if kind is not None:
            if kind == "histogram":
                out.add(name)
            continue
        base, suffix = name.rsplit("_", 1) if "_" in name else (name, "")
        if types.get(base) not in SERIES_SUFFIXES.get(f"_{suffix}", ()):
            out.add(name)
    return out


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    """A port nothing listens on now (the server that gets it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def prometheus_config(workdir: Path, target: str, token: str) -> Path:
    """The example prometheus.yml, scraping ``target`` every second with ``token``: written to
    ``workdir`` with the token file it names, rules from the repository's alerts.yml."""
    doc = yaml.safe_load(PROMETHEUS_YML.read_text())
    doc["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    doc["rule_files"] = [str(ALERTS)]
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == JOB]
    job["static_configs"] = [{"targets": [target]}]
    token_file = workdir / job["authorization"]["credentials_file"]
    token_file.write_text(token)
    token_file.chmod(0o600)
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass(frozen=True)
class Prometheus:
    base_url: str
    session: aiohttp.ClientSession

    async def api(self, path: str, **params: str) -> dict[str, Any]:
        """A JSON answer of the HTTP API (errors too: they come as JSON with status 4xx)."""
        async with self.session.get(f"{self.base_url}{path}", params=params) as resp:
            body: dict[str, Any] = await resp.json(content_type=None)
        return body

    async def query(self, expr: str) -> dict[str, Any]:
        return await self.api("/api/v1/query", query=expr)

    async def values(self, expr: str) -> list[float]:
        """The values of an instant query (fails on an error)."""
        body = await self.query(expr)
        assert body["status"] == "success", (expr, body)
        return [float(r["value"][1]) for r in body["data"]["result"]]


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: Path, session: aiohttp.ClientSession, *, target: str, token: str
) -> AsyncIterator[Prometheus]:
    """A Prometheus server scraping ``target`` (stopped at the end); its output goes to
    ``workdir/prometheus.log`` and is shown if it does not come up."""
    binary = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = prometheus_config(workdir, target, token)
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", session)
        await _until_ready(server, proc, log_path)
        yield server
    finally:
        await stop_process(proc)


async def _until_ready(
    server: Prometheus, proc: asyncio.subprocess.Process, log_path: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            raise AssertionError(f"prometheus exited {proc.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(aiohttp.ClientError):
            async with server.session.get(f"{server.base_url}/-/ready") as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise AssertionError(f"prometheus not ready in {timeout}s:\n{log_path.read_text()}")
        await asyncio.sleep(0.2)


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> None:
    """Terminate and wait (kill if it will not stop)."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
