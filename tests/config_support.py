"""What the configuration tests share: the shape from issue 5 verbatim, the example file's
variables and the secrets they hold, a minimal file, a file with a mistake in every section,
and the problems a text is refused with."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from monitor.config import ConfigFileError, parse_settings

CONFIG_DIR = Path(__file__).parent.parent / "config"
SECRET = "whsec_dGhpcyBpcyB0aGUgc29jIHNlY3JldCwgbG9uZyBlbm91Z2g="
TOKEN_HASH = "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f"

# Verbatim from issue 5, "The shape".
ISSUE_YAML = r"""trust:
  trusted_root: default            # or a path to a TrustedRoot JSON
  signing_config: default          # or a path to a SigningConfig JSON
logs:
  - name: rekor
    url: https://rekor.sigstore.dev
    api: v1
    start: tip                     # tip | resume | an index
    poll_interval: 30s
    requests_per_second: 8
  - name: rekor-v2
    api: v2
    discover: true                 # every v2 shard in the signing config
                                   # (or one shard by `url:`, as for v1)
database:
  url: sqlite+aiosqlite:///data/monitor.db
server:
  listen: 127.0.0.1:9464
  tokens:
    - name: responders
      sha256: e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f  # SHA-256 of the bearer token
      scopes: [read, write]
watch:
  - name: acme-release-signing
    match:
      extensions:
        source-repository-owner-uri: https://github.com/acme
    expect:
      issuer: https://token.actions.githubusercontent.com
      san: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
      extensions:
        runner-environment: github-hosted
    severity: high
  - name: maintainer-emails
    match:
      san: ["*@acme.com", {regex: "ops-[a-z]+@acme\\.io"}]
    severity: medium
  - name: offline-root-key
    match:
      key_fingerprint: sha256:4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139
    severity: critical
  - name: app-image
    match:
      subject: "ghcr.io/acme/app*"
    expect:
      san: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
    severity: high
alerts:
  sinks:
    - name: soc
      type: webhook                # webhook | slack | pagerduty | alertmanager
      url: https://soc.example.com/hooks/tlog
      secret_env: SOC_WEBHOOK_SECRET
      min_severity: medium
"""  # noqa: E501
SECRET_ENV_LINE = ISSUE_YAML.splitlines().index("      secret_env: SOC_WEBHOOK_SECRET") + 1

EXAMPLE_ENV = {
    "SOC_WEBHOOK_SECRET": SECRET,
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/slacksecretpart",
    "PAGERDUTY_ROUTING_KEY": "pagerduty-routing-key-secret",
    "ALERTMANAGER_URL": "http://alertmanager.internal:9093",
    "TLOG_DB_PASSWORD": "database-password-secret",
    "API_TOKEN_SHA256": hashlib.sha256(b"grafana token").hexdigest(),
}
EXAMPLE_SECRETS = [
    SECRET,
    "slacksecretpart",
    "pagerduty-routing-key-secret",
    "database-password-secret",
    EXAMPLE_ENV["API_TOKEN_SHA256"],
    TOKEN_HASH,
]

MINIMAL = "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"

# A mistake in every section (14 in all): each is reported at once, with its line.
MISTAKES = r"""trust:
  trusted_root: default
  colour: blue
logs:
  - name: rekor
    url: https://rekor.sigstore.dev
    api: v1
    start: -1
    poll_interval: 30 seconds
    requests_per_second: 0
  - name: rekor-v3
    api: v3
    url: https://example.com
watch:
  - name: a
    match:
      san: ["*@acme.com", {regex: "ops-[a-z+@acme\\.io"}]
    severity: hgih
  - name: a
    match:
      extensions:
        1.3.6.1.4.1.57264.1.12: x
        bogus-ext: y
      nope: z
    severity: low
alerts:
  sinks:
    - name: soc
      type: webhook
      url: https://soc.example.com/hooks/tlog
      secret_env: SOC_WEBHOOK_SECRET
      rules: [a, missing-rule]
      kinds: [health, bogus]
  max_age: forever
"""


def config_errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problems ``text`` (read as ``c.yaml``) is refused with, one a line."""
    with pytest.raises(ConfigFileError) as info:
        parse_settings(text, "c.yaml", environ=environ or {})
    return list(info.value.lines)
