"""Values a log controls (a SAN, an issuer, certificate extensions, an in-toto subject, what a
file says its entry is) reach the terminal escaped in every text output of the command line:
terminal sequences, CR/LF, bidirectional overrides and other invisible characters planted in
the simulator are shown as ``\\x1b``, ``\\r\\n``, ``\\u202e``..., never raw; ``--json`` keeps
them exact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.escape import escape
from tests.conftest import FIXTURES
from tests.daemon_support import write_config
from tests.simlog import Harness, harness, run
from tests.test_daemon_cli import cli

# what a hostile signer may write into a certificate: colours, a title and a hyperlink, a line
# of its own (CR/LF), bidirectional overrides and isolates, the 8-bit CSI, BEL, DEL
USERNAME = "mallory\x1b[32m\r\nFORGED ok\u202eexe.txt\u2066\x9b2J\x07\x7f"
ISSUER = "https://evil.example/\x1b]0;title\x07\x1b]8;;http://x\x1b\\\r\nFORGED\u2067issuer"
WORKFLOW_NAME = "Release\x1b[2K\rFORGED\u202e\u200f"
RUNNER = "self-hosted\r\n\u2068FORGED\u2069\u2028"
IMAGE = "ghcr.io/hostile/app\x1b[8m\nFORGED\u202d\ufeff"
HOSTILE = (USERNAME, ISSUER, WORKFLOW_NAME, RUNNER, IMAGE)

USER_DIGEST, WORKFLOW_DIGEST, IMAGE_DIGEST = "ab" * 32, "ac" * 32, "ad" * 32
RULES: list[dict[str, Any]] = [
    {"name": "user", "match": {"digest": f"sha256:{USER_DIGEST}"}, "severity": "high"},
    {
        "name": "workflow",
        "match": {"digest": f"sha256:{WORKFLOW_DIGEST}"},
        "expect": {"extensions": {"runner-environment": "github-hosted"}},
        "severity": "high",
    },
    {"name": "image", "match": {"subject_digest": f"sha256:{IMAGE_DIGEST}"}, "severity": "high"},
]
USER_AT, WORKFLOW_AT, IMAGE_AT = 203, 205, 207


def shown_escaped(text: str, *values: str) -> None:
    """``text`` holds nothing but printable characters and line breaks, no line a value
    forged, and each of ``values`` in its escaped form."""
    raw = sorted({repr(c) for c in text if not c.isprintable() and c != "\n"})
    assert raw == [], text
    assert not [line for line in text.splitlines() if line.lstrip().startswith("FORGED")], text
    for value in values:
        assert escape(value) in text, (escape(value), text)


def strings(doc: Any) -> Iterator[str]:
    """Every string in a JSON document."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings(v)


async def plant(h: Harness) -> None:
    identity = {"username": USERNAME, "issuer": ISSUER}
    await h.admin("plant", {"index": USER_AT, "identity": identity, "digest": USER_DIGEST})
    workflow = {
        "owner": "hostile",
        "repo": "app",
        "workflow_name": WORKFLOW_NAME,
        "runner_environment": RUNNER,
    }
    await h.admin(
        "plant",
        {"index": WORKFLOW_AT, "identity": {"github": workflow}, "digest": WORKFLOW_DIGEST},
    )
    await h.admin("plant", {"index": IMAGE_AT, "image": IMAGE, "digest": IMAGE_DIGEST})
    await h.admin("append", {"v1": 20, "v2": 20})


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A configuration whose database holds the hostile entries (a pass over the simulator),
    and the three entries as the Rekor v1 log serves them (LogEntry files)."""
    tmp = tmp_path_factory.mktemp("hostile")
    url = f"sqlite+aiosqlite:///{tmp / 'monitor.db'}"

    async def body() -> tuple[Path, list[Path]]:
        async with harness(tmp, entries=200, shards=2) as h:
            await plant(h)
            logs = {"start": 200, "index_all": True}
            cfg = write_config(tmp / "m.yaml", h.sim, tmp, url, v1=logs, v2=logs, rules=RULES)
            code, out, err = await cli("once", "--config", str(cfg))
            assert code == 1, (out, err)  # new findings
            files = []
            for index in (USER_AT, WORKFLOW_AT, IMAGE_AT):
                url_ = f"{h.sim.base_url}/api/v1/log/entries"
                async with h.session.get(url_, params={"logIndex": str(index)}) as resp:
                    assert resp.status == 200
                    path = tmp / f"entry-{index}.json"
                    path.write_bytes(await resp.read())
                    files.append(path)
        return cfg, files

    return run(body)


@pytest.mark.slow
def test_history_shows_log_values_escaped_and_its_json_exact(
    hostile: tuple[Path, list[Path]],
) -> None:
    cfg, _ = hostile

    async def body() -> None:
        for extra in ([], ["--all"]):
            code, out, err = await cli("history", "--config", str(cfg), *extra)
            assert code == 0, err
            shown_escaped(out, USERNAME, ISSUER)
            code, out, err = await cli("history", "--config", str(cfg), "--json", *extra)
            assert code == 0, err
            items = json.loads(out)["items"]
            assert {(e["san"], e["issuer"]) for e in items if e["index"] == USER_AT} == {
                (USERNAME, ISSUER)
            }

    run(body)


def test_findings_show_log_values_escaped_and_their_json_exact(
    hostile: tuple[Path, list[Path]],
) -> None:
    cfg, _ = hostile

    async def body() -> None:
        code, out, err = await cli("findings", "--config", str(cfg))
        assert code == 0, err
        shown_escaped(out)
        assert "\\x1b[32m" in out  # the SAN, in the user rule's detail
        code, out, err = await cli("findings", "--config", str(cfg), "--json")
        assert code == 0, err
        items = json.loads(out)["items"]
        (unmet,) = {
            a for f in items if f["rule"] == "workflow" for u in f["unmet"] for a in u["actual"]
        }
        assert unmet == RUNNER
        matched = [m["value"] for f in items if f["rule"] == "image" for m in f["matched"]]
        assert matched == [f"sha256:{IMAGE_DIGEST}"]

    run(body)


def test_inspect_shows_log_values_escaped_and_its_json_exact(
    hostile: tuple[Path, list[Path]],
) -> None:
    _, files = hostile
    root = str(files[0].parent / "trusted_root.json")

    async def body() -> None:
        code, out, err = await cli("inspect", "--trusted-root", root, *map(str, files))
        assert code == 0, err
        shown_escaped(out, USERNAME, ISSUER, WORKFLOW_NAME, RUNNER, IMAGE)
        code, out, err = await cli("inspect", "--trusted-root", root, "--json", *map(str, files))
        assert code == 0, err
        values = set(strings(json.loads(out)))
        assert set(HOSTILE) <= values  # exact

    run(body)


def test_verify_bundle_lines_show_what_the_file_says_escaped(tmp_path: Path) -> None:
    # a bundle is the file's to say: here its entry claims a hostile kind, quoted in the failure
    doc = json.loads(
        (
            FIXTURES / "v1-bundles" / "conformance.happy-path-intoto-in-dsse-v3.dsse.sigstore.json"
        ).read_text()
    )
    kind = "dsse\x1b[31m\r\nFORGED ok\u202e"
    doc["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] = kind
    bundle = tmp_path / "hostile.sigstore.json"
    bundle.write_text(json.dumps(doc))

    async def body() -> None:
        code, out, _ = await cli("verify-bundle", "-v", str(bundle))
        assert code == 1, out
        shown_escaped(out, kind)
        code, out, _ = await cli("verify-bundle", "--jsonl", str(bundle))
        assert code == 1, out
        (entry,) = json.loads(out)["entries"]
        details = [c["detail"] for c in entry["checks"] if c["name"] == "body"]
        assert details == [f"body is dsse 0.0.1, evidence says {kind} 0.0.1"]

    run(body)
