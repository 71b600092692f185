"""What the daemon serves on its port: the API (with ``/metrics`` and the health endpoints)
over an ``ApiContext`` that reads the daemon's live state, and the web console under
``/ui/``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from monitor.api import ApiContext, ApiServer
from monitor.console import PREFIX as CONSOLE
from monitor.console import console_app
from monitor.daemon.evidence import stored_evidence
from monitor.daemon.runners import Runner

if TYPE_CHECKING:
    from monitor.daemon.service import Monitor


def cosigners_of(runners: Mapping[str, Runner]) -> Callable[[str, str], list[dict[str, object]]]:
    """The cosignatures of a log's configured witnesses on a note (none without witnesses)."""

    def cosigners(log_name: str, note: str) -> list[dict[str, object]]:
        runner = runners.get(log_name)
        if runner is None or runner.witnesses is None:
            return []
        return runner.witnesses.cosigners(note)

    return cosigners


def api_server(m: Monitor) -> ApiServer:
    """The daemon's API server and console, reading ``m`` at each request."""
    ha = m.settings.ha

    async def evidence(log_name: str, index: int) -> bytes:
        """A stored entry's evidence file, from its log (``daemon/evidence.py``)."""
        return await stored_evidence(m.store, m.runners, m.trust, log_name, index)

    ctx = ApiContext(
        m.store,
        m.settings.server,
        m.registry,
        statuses=lambda: {name: r.status for name, r in m.runners.items()},
        ready_within=m.settings.health.unreachable_after.total_seconds(),
        rules=frozenset(rule.name for rule in m.settings.watch),
        replica=None if ha is None else ha.replica_id,
        leads=m.lead.leads,
        leaders=m.lead.leaders,
        cosigners=cosigners_of(m.runners),
        evidence=evidence,
    )
    return ApiServer(ctx, {f"{CONSOLE}/": console_app})
