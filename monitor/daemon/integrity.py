"""After a log's pass: integrity findings that clear by themselves once the log is consistent
again, the end of an unwitnessed episode, and the comparison with a distributor."""

from __future__ import annotations

import logging

from monitor.core.findings import SELF_CLEARING, FindingKind, FindingState
from monitor.core.status import LogStatus
from monitor.daemon.context import PassResult
from monitor.daemon.runners import Runner
from monitor.daemon.vantage import VantageStore
from monitor.storage import FindingQuery
from monitor.storage.ports import HealthStore

__all__ = ["after_pass", "settle_integrity"]

log = logging.getLogger("monitor.daemon")


async def settle_integrity(store: HealthStore, status: LogStatus, result: PassResult) -> None:
    """Integrity findings stay open while the log keeps failing. Once a pass proves new
    entries consistent with everything verified before, those that can clear by themselves
    (``SELF_CLEARING``: data served wrong or withheld) are resolved, their evidence kept;
    a proven lie (two signed views, a shrunk tree) stays open until a person resolves it.
    A pass without new entries proves nothing new, so it resolves nothing."""
    if result.failure is not None:
        status.integrity_open = True
        return
    if not status.integrity_open or result.entries == 0:
        return
    query = FindingQuery(
        kinds=(FindingKind.INTEGRITY_FAILURE,),
        states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
        log=status.name,
        limit=1000,
    )
    note = (
        f"the log is consistent again: entries up to index {result.cursor} verified "
        "against its signed checkpoints; the evidence is kept"
    )
    for sf in (await store.findings(query)).items:
        if sf.finding.id is None or sf.finding.type not in SELF_CLEARING:
            continue
        await store.resolve_finding(sf.finding.id, "monitor", note)
        log.info(
            "integrity failure resolved",
            extra={"fields": {"log": status.name, "finding": sf.finding.id}},
        )
    status.integrity_open = False


async def after_pass(store: VantageStore, runner: Runner, result: PassResult) -> None:
    """What follows a tailing pass of ``runner`` (not a backfill's)."""
    await settle_integrity(store, runner.status, result)
    if runner.witnesses is not None:
        await runner.witnesses.settle(store)
    if runner.vantage is not None and result.failure is None:
        await runner.vantage.after_pass(runner.source, store)
