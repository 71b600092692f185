"""The configuration the daemon's benchmark backfills with: the simulator's logs, watch rules
of an organisation and an alert sink, into a fresh SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.daemon_sim import Sim
from bench.daemon_targets import V1_BUDGET

GHA = "https://token.actions.githubusercontent.com"

# Watch rules of an organisation, over identities that the simulator (seed 1) produces: a
# release policy for one repository (its matches off a tag break ``expect``: findings, each
# with a chain check), one that is always met (expected_use findings), a maintainer's e-mail
# address, a CI key in routine use, and a root key and an image that never appear. About 2%
# of the simulated entries match one of them.
RULES: list[dict[str, Any]] = [
    {
        "name": "go-lib-releases",
        "match": {"extensions": {"source-repository-uri": "https://github.com/tyrell-oss/go-lib"}},
        "expect": {
            "issuer": GHA,
            "san": "https://github.com/tyrell-oss/go-lib/.github/workflows/*.yml@refs/tags/v*",
            "extensions": {"runner-environment": "github-hosted"},
        },
        "severity": "high",
    },
    {
        "name": "py-api-provenance",
        "match": {"extensions": {"source-repository-uri": "https://github.com/stark/py-api"}},
        "expect": {
            "issuer": GHA,
            "san": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/*",
        },
        "severity": "high",
    },
    {
        "name": "maintainer-emails",
        "match": {"san": ["trent.chen@corp.example", {"regex": "ops-[a-z]+@corp\\.example"}]},
        "severity": "medium",
    },
    {
        "name": "ci-deploy-key",
        "match": {
            "key_fingerprint": "sha256:bab963b3089778b89eb1f94724652703"
            "4ac7f4571f871599b40d9676b5587b12"
        },
        "severity": "low",
    },
    {
        "name": "offline-root-key",
        "match": {
            "key_fingerprint": "sha256:4cb32c4837c6dda8cfb1681efb3fef5f"
            "94ffce5b979e6bdb9139302c857af139"
        },
        "severity": "critical",
    },
    {
        "name": "app-images",
        "match": {"subject": "ghcr.io/tyrell-oss/*"},
        "expect": {"san": "https://github.com/tyrell-oss/*/.github/workflows/*@refs/tags/*"},
        "severity": "high",
    },
]

SINKS: list[dict[str, Any]] = [
    {
        "name": "soc",
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "secret": "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC1iZW5jaCE=",  # a dummy
        "min_severity": "medium",
    }
]


def write_config(
    path: Path, sim: Sim, db: Path, log: dict[str, Any], workers: int | None = None
) -> Path:
    """A configuration of the one log ``log`` on the simulator, into a fresh database
    (``workers``: its ``parse_workers``; None: the default)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    doc: dict[str, Any] = {
        "trust": {
            "trusted_root": str(sim.out / "trusted_root.json"),
            "signing_config": str(sim.out / "signing_config.json"),
        },
        "logs": [log],
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "watch": RULES,
        "alerts": {"sinks": SINKS},
    }
    if workers is not None:
        doc["processing"] = {"parse_workers": workers}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _batch(batch_size: int | None) -> dict[str, Any]:
    """The ``batch_size`` setting: None measures the configuration's default."""
    return {} if batch_size is None else {"batch_size": batch_size}


def v2_log(batch_size: int | None) -> dict[str, Any]:
    return {
        "name": "v2",
        "api": "v2",
        "discover": True,
        "start": 0,
        **_batch(batch_size),
        "requests_per_second": 100,
        "burst": 50,
        "index_all": True,
    }


def v1_log(sim: Sim, start: int, batch_size: int | None) -> dict[str, Any]:
    # burst and concurrency: the defaults
    return {
        "name": "v1",
        "api": "v1",
        "url": sim.base_url,
        "start": start,
        **_batch(batch_size),
        "requests_per_second": V1_BUDGET,
        "index_all": True,
    }
