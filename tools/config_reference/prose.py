"""What the reference says beside the options: the opening, a complete example, the rule
language's selector fields and the finding kinds. Each table is checked against the code it
describes (``document.check``), so none can fall behind it unnoticed."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.core.findings import FindingKind
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS
from monitor.rules.spec import SIMPLE_FIELDS

SELECTOR_FIELDS: Mapping[str, str] = {
    "san": "A certificate's subject alternative names, every one: e-mail, URI (a GitHub "
    "Actions workflow: `https://github.com/OWNER/REPO/.github/workflows/FILE@REF`) or Fulcio "
    "username.",
    "issuer": "A certificate's OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, else the "
    "legacy .1.1), e.g. `https://token.actions.githubusercontent.com`.",
    "key_fingerprint": "The signing key: `sha256:<hex>` of its DER SubjectPublicKeyInfo (a "
    "bare key, or a certificate's key; `openssl pkey -pubin -outform DER | sha256sum`), the "
    "OpenPGP fingerprint (lower-case hex), `SHA256:<base64>` for SSH (as `ssh-keygen -l` "
    "prints it), or the minisign key ID.",
    "cert_fingerprint": "`sha256:<hex>` of the DER certificate.",
    "digest": "What was signed: artifact digests, and the DSSE/in-toto payload hash, as "
    "`alg:hex` or bare hex.",
    "subject": "In-toto subject names, e.g. `ghcr.io/acme/app`. Known only where the "
    "statement is: Rekor v1 `intoto` entries whose attestation the log stored (see "
    "[what the log cannot show](threat-model.md#what-the-log-cannot-show)).",
    "subject_digest": "In-toto subject digests (`sha256:<hex>` or bare hex), with the same "
    "limit as `subject`.",
    "kind": "The entry kind: `hashedrekord`, `dsse`, `intoto`, `rekord`, `jar`, `rpm`, "
    "`helm`, `alpine`, `cose`, `tuf`, `rfc3161`.",
    "log": "The log's name (a discovered shard: `NAME@SHARD`).",
}

FINDING_KINDS: Mapping[FindingKind, str] = {
    FindingKind.UNEXPECTED_SIGNER: "matched `match`, failed `expect`, signed with a certificate; "
    "or an image of an `images` repository signed by someone its `expect` does not allow",
    FindingKind.UNEXPECTED_KEY_USE: "the same, signed with a bare key",
    FindingKind.EXPECTED_USE: "matched `match` and met `expect`: a record, not a task, stored "
    "in the state `recorded` (never in the open queue); alerted only where the rule has "
    "`alert_expected_use` and a sink lists `expected_use` in its `kinds`",
    FindingKind.WATCHED_USE: "matched a rule without `expect`",
    FindingKind.INTEGRITY_FAILURE: "the log was caught lying (critical, no rule)",
    FindingKind.MALFORMED_ENTRY: "the log served an entry that cannot be parsed (medium, no rule)",
    FindingKind.HEALTH: "the monitor cannot fully do its job (no rule)",
    FindingKind.UNWITNESSED_CHECKPOINT: "the log's checkpoints lacked the quorum of its "
    "`witnesses` for `unwitnessed_after` (high under `require`, medium under `warn`; no rule)",
    FindingKind.UNSIGNED_IMAGE: "a watched tag of an `images` repository points at a digest "
    "without what its `require` asks from an expected signer once its `grace` is over (the "
    "repository's severity; `image` names it)",
    FindingKind.INVALID_SIGNATURE: "an image's signature or attestation is there but fails "
    "verification; the detail says why",
    FindingKind.TLOG_MISMATCH: "a registry signature names a log entry that the verified log "
    "holds with another body: the registry and the log disagree",
    FindingKind.ORPHAN_SIGNATURE: "an entry of a rule with `orphans` that no signature in a "
    "watched registry explains after its `grace` and a complete registry pass: signed with "
    "the identity, never shipped (the rule's severity)",
}

GITHUB_ORG_EXAMPLE = """\
# The monitor for acme, a GitHub organisation (owner id 4242421) that signs with Sigstore
# from GitHub Actions. Secrets come from the environment: TLOG_DB_PASSWORD, SOC_TOKEN_SHA256,
# PROMETHEUS_TOKEN_SHA256, SOC_WEBHOOK_SECRET, PAGERDUTY_ROUTING_KEY.
logs:
  - name: rekor
    api: v1
    url: https://rekor.sigstore.dev
    start: tip
  - name: rekor-v2
    api: v2
    discover: true               # every Rekor v2 shard, new ones included
    start: tip
    index_all: true              # Rekor v2 has no search API: keep a row for every entry
    retention: 90d

database:
  url: postgresql+asyncpg://tlog_monitor@db.internal:5432/tlog_monitor
  password_env: TLOG_DB_PASSWORD

server:
  listen: 0.0.0.0:9464           # behind a network policy or a TLS proxy
  tokens:
    - name: soc
      sha256_env: SOC_TOKEN_SHA256
      scopes: [read, write]
    - name: prometheus
      sha256_env: PROMETHEUS_TOKEN_SHA256
      scopes: [read]

watch:
  # Every certificate Fulcio issues for a workflow run in any repository named acme/...
  # Only the release workflow of the repository itself, run for a version tag on GitHub's
  # runners, may sign. The numeric owner id catches a look-alike: if the organisation is
  # renamed and someone registers the old name, their certificates carry the same owner URI
  # but another id.
  - name: acme-workflows
    description: acme signs only from release.yml, on a v* tag, on GitHub-hosted runners.
    match:
      extensions:
        source-repository-owner-uri: https://github.com/acme
    expect:
      issuer: https://token.actions.githubusercontent.com
      extensions:
        source-repository-owner-identifier: "4242421"
        build-signer-uri: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
        source-repository-ref: "refs/tags/v*"
        runner-environment: github-hosted
    severity: high

  # Attestations about acme's container images, whoever made them. Only acme's release
  # workflows may attest them: provenance for ghcr.io/acme/app from any other repository or
  # workflow is a finding. (In-toto subjects are known only for Rekor v1 intoto entries.)
  - name: acme-images
    description: Images under ghcr.io/acme are attested by acme release workflows only.
    match:
      subject: "ghcr.io/acme/*"
    expect:
      issuer: https://token.actions.githubusercontent.com
      extensions:
        source-repository-owner-identifier: "4242421"
        build-signer-uri: "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*"
    severity: critical

  # The offline release key (a cosign key pair kept in a hardware token): any use is news.
  - name: acme-release-key
    description: The offline release key signs twice a year, by hand; tell us every time.
    match:
      key_fingerprint: sha256:0ab6e1a64c8e4fb0e0c3cf1ea4a9a6f8e7f2b11e8a5e0e5c1d93f7c0b4a2d6e1
    severity: critical

  # Maintainers sign by hand with their acme.com Google accounts, and only that way.
  - name: acme-maintainers
    description: Signatures by acme.com addresses come from acme's Google Workspace.
    match:
      san: "*@acme.com"
    expect:
      issuer: https://accounts.google.com
    severity: medium

alerts:
  sinks:
    - name: soc
      type: webhook
      url: https://soc.acme.example/hooks/tlog-monitor
      secret_env: SOC_WEBHOOK_SECRET
      min_severity: medium
    - name: on-call
      type: pagerduty
      routing_key_env: PAGERDUTY_ROUTING_KEY
      min_severity: critical       # integrity failures, the release key, image provenance
"""


HEADER = """\
# Configuration reference

<!-- Generated by `{generator}` from the settings model
     (monitor/config/models.py and its sections; each option's description is on its field).
     Do not edit: tests/test_docs_reference.py fails when they differ. -->

tlog-monitor reads one YAML file: `config/monitor.yaml` unless `--config FILE` says
otherwise. [`config/monitor.example.yaml`](../config/monitor.example.yaml) shows every
option with a comment. Check a file before you use it:

```sh
tlog-monitor check-config FILE
```

It reads the secrets from the environment as the daemon would, checks every log against the
trust root and prints a summary (never a secret), or every problem at once, each as
`file:line: field.path: what is wrong`, and exits 2.

- **Unknown keys are errors**: a misspelt option never falls back to its default silently.
- **Only `logs` is required.** Sections left out take their defaults.
- **Durations** are a number of seconds or a string such as `250ms`, `30s`, `5m`, `1h30m`,
  `7d`, `2w`.
- **Relative paths** (trust files, the SQLite database, the TUF cache, and their defaults)
  are relative to the directory of the configuration file, not to the working directory:
  one file names the same database whoever reads it, from wherever. `config/monitor.yaml`
  keeps its database in `data/` at the top of the repository (`../data/monitor.db`).
- **Secrets stay out of the file**: every `X_env: NAME` option reads `X` from the
  environment variable `NAME` at start (unset or empty is an error). Secrets are never
  printed: not by `check-config`, not in logs, metrics or error messages.
- **Names** of logs, rules, sinks and tokens are letters, digits, `.`, `_` and `-`, at most
  63 characters, starting with a letter or digit, and unique in their list: findings,
  metrics and URLs carry them.
"""

GITHUB_ORG = """\
## A rule set for a GitHub organisation

A complete file for an organisation that signs its releases and images with Sigstore from
GitHub Actions (the tests check it with `tlog-monitor check-config`):

<!-- github-org-example -->
```yaml
{example}
```

What each rule catches:

- **`acme-workflows`** sees every certificate Fulcio issued for a workflow of an `acme`
  repository. A signature from another workflow or ref (a debug workflow, a run on a
  branch), from a self-hosted runner, or by a look-alike
  organisation that took over the name is an `unexpected_signer` finding naming the field
  that failed. A certificate that does not chain to a Fulcio CA of the trusted root never
  meets `expect`.
- **`acme-images`** looks at what was signed instead of who signed it: provenance or
  another attestation naming an `acme` image, made by anyone else, is a finding. It works
  where the in-toto statement is known (Rekor v1 `intoto` entries with their stored
  attestation); Rekor v1 `dsse` and Rekor v2 entries carry no subjects.
- **`acme-release-key`** has no `expect`: every use of the key is a `watched_use` finding.
- **`acme-maintainers`** accepts `acme.com` identities only as verified by Google; the same
  address verified by another identity provider is a finding.

Reusable workflows put the called workflow in the SAN and in `build-signer-uri`, and the
calling one in `build-config-uri`: a repository that builds with a shared workflow (for
example a SLSA generator) needs `build-config-uri` in `expect` for its own workflow and
`build-signer-uri` for the shared one.
"""


def rules_section() -> str:
    names = ", ".join(f"`{n}`" for n in FULCIO_EXTENSION_OIDS)
    rows = "\n".join(f"| `{f}` | {cell(SELECTOR_FIELDS[f])} |" for f in SIMPLE_FIELDS)
    rows += (
        "\n| `extensions` | A mapping of certificate extensions to patterns: a Fulcio "
        f"extension by name ({names}), or any extension by dotted OID. |"
    )
    kinds = "\n".join(f"| `{k}` | {cell(FINDING_KINDS[k])} |" for k in FindingKind)
    return f"""\
## Watch rules

A rule says which entries are ours (`match`), what a legitimate signature of ours looks like
(`expect`, optional), and how bad a surprise is (`severity`).

### Selectors

`match` and `expect` are selectors: a mapping of fields to patterns. Fields combine with AND;
a list of patterns for one field with OR. `expect` is judged signer by signer: every signer
of the entry must meet it.

| Field | What it matches |
| --- | --- |
{rows}

A pattern is

- an exact string: `https://github.com/acme`;
- a glob, any string with `*`, which matches anything, `/` and newlines included:
  `https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*`;
- or a regular expression, `{{regex: "ops-[a-z]+@acme\\\\.io"}}`, anchored at both ends, in
  RE2 syntax (linear time: no rule can hang the monitor).

Digests and fingerprints compare case-insensitively in their hex part. A field the entry
does not have matches no pattern, not even `*`.

### Findings

| Kind | When |
| --- | --- |
{kinds}

Each finding names its rule, log, index, kind and severity, the values that matched and the
`expect` fields that failed (with what was expected and what the entry had), and a stable
dedup key.
"""


def cell(text: str) -> str:
    """``text`` as one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")
