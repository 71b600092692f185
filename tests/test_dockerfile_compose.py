"""The compose example: services pinned and locked down, two replicas that differ only in
name, port and volume, and its monitor and Prometheus configurations checked by the
configuration loader and promtool."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from monitor.config.trustcheck import load_checked
from tests.dockerfile_support import (
    DATA_DIR,
    DEPLOY,
    DOCKERFILE,
    PINNED,
    ROOT,
    SECRET_NAME,
    run,
    write_config,
)


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


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
