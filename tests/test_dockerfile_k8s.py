"""The Kubernetes example: the manifests' kinds, a Secret with no value committed, a
locked-down Deployment of replicas on separate nodes, probes and scrape annotations that match
its configuration, the database it reaches, and a Prometheus job that finds the monitor only."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from sqlalchemy.engine import make_url

from monitor.config.models import Settings
from monitor.config.trustcheck import load_checked
from tests.dockerfile_support import DATA_DIR, DEPLOY, PINNED, final_user, write_config


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
