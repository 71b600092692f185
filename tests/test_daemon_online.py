"""The shipped default configuration against the live public logs (``-m online`` only): one
verified pass from the tip of Rekor v1 and of every current Rekor v2 shard, then a second
that must extend it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from tests.simlog import run

ROOT = Path(__file__).parent.parent


@pytest.mark.online
def test_default_config_tails_the_public_logs(tmp_path: Path) -> None:
    text = (ROOT / "config" / "monitor.yaml").read_text()
    db = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    config = tmp_path / "monitor.yaml"
    config.write_text(text.replace("sqlite+aiosqlite:///data/monitor.db", db))

    async def body() -> None:
        async with Monitor.open(str(config)) as m:
            first = await m.once()
            second = await m.once()
        assert "rekor" in first
        for name in first:
            a, b = first[name], second[name]
            assert isinstance(a, PassResult), a
            assert isinstance(b, PassResult), b
            assert a.failure is None
            assert b.failure is None
            assert b.cursor >= a.cursor

    run(body)
