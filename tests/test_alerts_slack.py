"""Alert payloads for Slack: a finding or a group that reads well, hostile values escaped,
links that cannot break out, block limits kept, the URL never carried; and the entry links
the daemon gives (the public Rekor v1 log's only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.alerts import payloads
from monitor.alerts.payloads import slack, slack_escape
from monitor.core.findings import Severity
from monitor.daemon.service import Monitor
from tests.payload_support import NOW, body, entry_url, health, sink, stored
from tests.storage_support import run

TRUST = Path(__file__).parent / "fixtures" / "trust"

HOSTILE_SAN = "<!channel> <https://evil.example|click here> <@U0123> &lt;!here&gt; `x` *bold*"


def mrkdwn_texts(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        if doc.get("type") == "mrkdwn":
            yield doc
        for v in doc.values():
            yield from mrkdwn_texts(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from mrkdwn_texts(v)


def test_slack_single_finding_reads_well() -> None:
    m = slack(sink("slack"), "trigger", [stored()], entry_url=entry_url)
    doc = body(m)
    assert doc["unfurl_links"] is False
    assert doc["unfurl_media"] is False
    assert doc["text"] == "[HIGH] unexpected_signer, rule release, rekor #42"
    header = doc["blocks"][0]
    assert header["type"] == "header"
    assert "HIGH" in header["text"]["text"]
    assert "rule release" in header["text"]["text"]
    text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "<https://search.sigstore.dev/?logIndex=42|rekor #42>" in text
    assert "`pkg:oci/example/app`" in text  # the artifact that matched
    assert "san is `mallory@evil.example`, expected `https://github.com/example/app/*`" in text
    assert "fulcio_chain is _absent_, expected `verified`" in text
    assert "mallory@evil.example signed pkg:oci/example/app" in text  # the detail
    assert m.headers == {"content-type": "application/json", "user-agent": m.headers["user-agent"]}


def test_slack_without_a_link() -> None:
    doc = body(slack(sink("slack"), "trigger", [stored(log="other")], entry_url=entry_url))
    text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "*Log entry*\nother #42" in text
    assert "<" not in text


@pytest.mark.parametrize("where", ["san", "detail"])
def test_slack_escapes_hostile_values(where: str) -> None:
    f = stored(san=HOSTILE_SAN) if where == "san" else stored(detail=HOSTILE_SAN)
    for fs in ([f], [f, stored(43, san=HOSTILE_SAN)]):
        doc = body(slack(sink("slack"), "trigger", fs, entry_url=entry_url))
        texts = list(mrkdwn_texts(doc))
        assert texts
        assert all(t["verbatim"] is True for t in texts)
        joined = "\n".join(t["text"] for t in texts)
        assert "&lt;!channel&gt;" in joined
        assert "&lt;https://evil.example|click here&gt;" in joined
        assert "&amp;lt;!here&amp;gt;" in joined  # entities in the data stay text
        for link in ("<https://search.sigstore.dev/?logIndex=42|rekor #42>",
                     "<https://search.sigstore.dev/?logIndex=43|rekor #43>"):  # fmt: skip
            joined = joined.replace(link, "")
        # no '<' or '>' left: nothing from the log can open a link or a mention
        assert "<" not in joined
        assert ">" not in joined
        assert "<" not in doc["text"]
        assert "&" not in doc["text"]  # the notification text holds no log values


def test_slack_escape() -> None:
    assert slack_escape("<!channel> a&b >x") == "&lt;!channel&gt; a&amp;b &gt;x"
    assert slack_escape("line\nbreak\x00") == "line\\nbreak\\x00"


@pytest.mark.parametrize(
    "url", ["https://x.example/a|<!channel>", "javascript:alert(1)", "https://x.example/a b"]
)
def test_slack_refuses_links_that_could_break_out(url: str) -> None:
    doc = body(slack(sink("slack"), "trigger", [stored()], entry_url=lambda _log, _i: url))
    joined = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "<" not in joined
    assert "rekor #42" in joined


def test_slack_group_lists_ten_and_counts_the_rest() -> None:
    fs = [stored(i) for i in range(100, 125)]
    m = slack(sink("slack"), "trigger", fs, entry_url=entry_url)
    doc = body(m)
    assert m.dedup_keys == tuple(f.dedup_key for f in fs)  # none lost
    assert doc["text"] == "[HIGH] 25 unexpected_signer findings of rule release"
    joined = "\n".join(t["text"] for t in mrkdwn_texts(doc))
    assert "*25 findings* of rule *release* arrived together" in joined
    for i in range(100, 110):
        assert f"|rekor #{i}>" in joined
    assert "rekor #110" not in joined
    assert "15 more findings not shown" in joined
    assert len(doc["blocks"]) <= 50


def test_slack_group_severity_is_the_worst() -> None:
    fs = [stored(1, severity=Severity.LOW), stored(2, severity=Severity.CRITICAL)]
    doc = body(slack(sink("slack"), "trigger", fs))
    assert doc["text"].startswith("[CRITICAL] 2 unexpected_signer findings")


def test_slack_respects_block_limits_with_huge_hostile_values() -> None:
    evil = "&<>" * 1000
    f = stored(san=evil, detail=evil)
    for fs in ([f], [f, stored(43, san=evil, detail=evil)]):
        doc = body(slack(sink("slack"), "trigger", fs, entry_url=entry_url))
        assert len(doc["blocks"][0]["text"]["text"]) <= 150
        for block in doc["blocks"]:
            if "text" in block and block["type"] == "section":
                text = block["text"]["text"]
                assert 0 < len(text) <= 3000
                assert text.count("`") % 2 == 0
                if "&" in text:  # no entity cut in half
                    assert ";" in text[text.rfind("&") :]
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000


def test_slack_resolve_and_test_are_marked() -> None:
    resolved = body(slack(sink("slack"), "resolve", [health()]))
    assert resolved["text"].startswith("RESOLVED: health (log_unreachable)")
    assert "RESOLVED" in resolved["blocks"][0]["text"]["text"]
    assert any("has cleared" in t["text"] for t in mrkdwn_texts(resolved))
    test = body(payloads.test_message(sink("slack"), now=NOW))
    assert test["text"].startswith("TEST: tlog-monitor alert path check")
    assert "TEST" in test["blocks"][0]["text"]["text"]
    assert any("No action is needed" in t["text"] for t in mrkdwn_texts(test))


def test_slack_never_carries_its_url() -> None:
    for m in (
        slack(sink("slack"), "trigger", [stored()]),
        payloads.test_message(sink("slack"), now=NOW),
    ):
        assert b"S3CR3TPATH" not in m.body
        assert "S3CR3TPATH" not in repr(m)


def monitor_config(path: Path, root: str, logs: list[dict[str, Any]]) -> Path:
    """A configuration of ``logs`` checked against the ``root`` trusted root fixture."""
    doc = {
        "trust": {
            "trusted_root": str(TRUST / f"trusted_root.{root}.json"),
            "signing_config": str(TRUST / "signing_config.v0.2.prod.json"),
        },
        "logs": logs,
        "database": {"url": f"sqlite+aiosqlite:///{path.with_suffix('.db')}"},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_daemon_links_entries_of_the_public_rekor_v1_log_only(tmp_path: Path) -> None:
    """``Monitor.entry_url`` (``runners.link_to_entry``), what the daemon gives the sinks: the
    public Rekor v1 log's entries link to search.sigstore.dev by log index; no other log's
    entries link anywhere."""
    prod = monitor_config(
        tmp_path / "prod.yaml",
        "prod",
        [
            {"name": "rekor", "api": "v1", "url": "https://rekor.sigstore.dev"},
            {"name": "rekor-v2", "api": "v2", "url": "https://log2025-1.rekor.sigstore.dev"},
        ],
    )
    staging = monitor_config(
        tmp_path / "staging.yaml",
        "staging",
        [{"name": "staging", "api": "v1", "url": "https://rekor.sigstage.dev"}],
    )

    async def links() -> None:
        async with Monitor.open(str(prod)) as m:
            assert sorted(m.runners) == ["rekor", "rekor-v2"]
            assert m.store.queued == m.wake_workers  # a commit that queues alerts wakes them
            assert m.entry_url("rekor", 123456789) == (
                "https://search.sigstore.dev/?logIndex=123456789"
            )
            assert m.entry_url("rekor", 0) == "https://search.sigstore.dev/?logIndex=0"
            assert m.entry_url("rekor-v2", 7) is None
            assert m.entry_url("not-configured", 7) is None
            doc = body(slack(sink("slack"), "trigger", [stored(5)], entry_url=m.entry_url))
            text = "\n".join(t["text"] for t in mrkdwn_texts(doc))
            assert "<https://search.sigstore.dev/?logIndex=5|rekor #5>" in text
        async with Monitor.open(str(staging)) as m:
            assert list(m.runners) == ["staging"]
            assert m.entry_url("staging", 7) is None

    run(links)
