"""When data a log signed and does not serve stops being an outage and becomes a lie
(``monitor.daemon.withheld``), and parsing that lets the event loop run as it goes."""

from __future__ import annotations

import asyncio
from typing import Any

from monitor.core.errors import TransientLogError
from monitor.core.findings import IntegrityType
from monitor.daemon import parsing
from monitor.daemon.parsing import Chunk, parse_chunk
from monitor.daemon.withheld import withheld
from monitor.logclient.owed import Owed
from monitor.rules.engine import RuleEngine
from monitor.tlog.proofs import IntegrityFailure
from tests.proof_support import signed, store_of, verified
from tests.simlog import run

T0 = 1_700_000_000.0


def test_entries_owed_past_missing_after_are_a_lie_with_the_checkpoint_as_evidence() -> None:
    owed = Owed()
    store = store_of(300)
    cp, state = signed(store, 300), verified(store, 200)
    error = TransientLogError("log: tile 0/0/256 missing")

    def ask(now: float) -> IntegrityFailure | None:
        return withheld(owed, "v2", 600.0, error, checkpoint=cp, verified=state, now=now)

    assert ask(T0) is None  # an outage first
    assert ask(T0 + 599) is None
    failure = ask(T0 + 600)
    assert failure is not None
    assert failure.type is IntegrityType.MISSING_ENTRIES
    evidence: dict[str, Any] = failure.evidence
    assert evidence["new"]["checkpoint"] == cp.raw
    assert (evidence["missing_first_index"], evidence["missing_end_index"]) == (200, 300)
    assert (evidence["index"], evidence["owed_seconds"]) == (200, 600)
    assert evidence["last_error"] == "log: tile 0/0/256 missing"
    assert owed.since("v2") == T0

    owed.served("v2")  # an entry was stored: the clock starts again at the next failure
    assert ask(T0 + 700) is None
    assert owed.since("v2") == T0 + 700
    assert owed.since("other") is None  # each reader of the log has its own clock


def test_parsing_lets_the_event_loop_run_between_slices() -> None:
    entries = tuple((i, b'{"kind": "x"}', None, None) for i in range(50))
    chunk = Chunk("log", entries, index_all=False, seen=0)

    async def body(seconds: float) -> int:
        turns = 0
        done = False

        async def count() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count())
        await asyncio.sleep(0)
        old = parsing.SLICE_SECONDS
        parsing.SLICE_SECONDS = seconds
        try:
            parsed = await parse_chunk(chunk, RuleEngine.compile([]), [])
        finally:
            parsing.SLICE_SECONDS = old
            done = True
            await counter
        assert len(parsed.malformed) == 50
        return turns

    assert run(lambda: body(0.0)) >= 50  # a slice of no time: an entry, then a turn
    assert run(lambda: body(10.0)) <= 3  # all at once
