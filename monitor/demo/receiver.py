"""The demo's webhook receiver: what a team's own endpoint does with the monitor's alerts.

It checks the Standard Webhooks signature of every delivery (a forged or stale one is
answered 401 and shown as rejected), drops repeats by ``webhook-id`` (delivery is at least
once), and prints one line per finding. Every value that came from a log is shown escaped:
a certificate may carry terminal control sequences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from monitor.alerts.signing import HEADER_ID, verify
from monitor.core.escape import escape
from monitor.demo.layout import HOOK_PATH

_VALUE_MAX = 120
_SEEN_MAX = 10_000


def clean(value: object, limit: int = _VALUE_MAX) -> str:
    """One printable line, at most ``limit`` characters."""
    text = escape(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(name: object) -> str:
    text = str(name)
    return text.removeprefix("ext:")


def _reason(finding: Mapping[str, Any]) -> str:
    """Why this finding: what ``expect`` found wrong, else what the rule matched, else the
    finding's own detail."""
    unmet = [u for u in finding.get("unmet") or () if isinstance(u, Mapping)]
    if unmet:
        parts = []
        for u in unmet:
            actual = " or ".join(clean(v) for v in (u.get("actual") or ())) or "absent"
            expected = " or ".join(clean(v) for v in (u.get("expected") or ()))
            parts.append(f"{_field(u.get('field'))} is {actual} (expected {expected})")
        return "; ".join(parts)
    matched = [m for m in finding.get("matched") or () if isinstance(m, Mapping)]
    if matched:
        return ", ".join(f"{_field(m.get('field'))} {clean(m.get('value'))}" for m in matched)
    return clean(finding.get("detail") or "", 300)


def describe(doc: Mapping[str, Any], finding: Mapping[str, Any], at: float) -> str:
    """The line printed for one finding of a verified delivery."""
    clock = datetime.fromtimestamp(at).strftime("%H:%M:%S")
    if doc.get("type") == "test":
        return f"{clock} [signature ok] TEST alert from sink {clean(doc.get('sink'))}"
    event = "RESOLVED" if doc.get("type") == "finding.resolved" else "ALERT"
    severity = clean(finding.get("severity") or "?").upper()
    parts = [f"{clock} [signature ok] {event} {severity} {clean(finding.get('kind'))}"]
    if finding.get("rule"):
        parts.append(f"rule {clean(finding['rule'])}")
    if finding.get("log") is not None:
        parts.append(f"{clean(finding['log'])} #{clean(finding.get('index'))}")
    return " | ".join([*parts, _reason(finding)])


class AlertReceiver:
    """An aiohttp application at ``HOOK_PATH``; ``emit`` gets each line to show."""

    def __init__(
        self,
        secrets: tuple[bytes, ...],
        emit: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.emit = emit
        self.clock = clock
        self.deliveries = 0  # verified, repeats included
        self.findings = 0  # lines shown for findings
        self.rejected = 0
        self._seen: dict[str, None] = {}
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(HOOK_PATH, self._hook)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port it got."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound: int = runner.addresses[0][1]
        return bound

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = self.clock()
        headers = dict(request.headers.items())
        if not verify(headers, body, self.secrets, now=int(now)):
            self.rejected += 1
            clock = datetime.fromtimestamp(now).strftime("%H:%M:%S")
            self.emit(f"{clock} [REJECTED] a delivery whose signature or time is wrong: not shown")
            return web.Response(status=401, text="bad signature")
        try:
            doc = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(doc, dict):
            return web.Response(status=400, text="not a JSON object")
        self.deliveries += 1
        msg_id = request.headers.get(HEADER_ID, "")
        if msg_id in self._seen:
            return web.Response(text="repeat")  # already shown: say yes, show nothing
        self._seen[msg_id] = None
        if len(self._seen) > _SEEN_MAX:
            del self._seen[next(iter(self._seen))]
        if doc.get("type") == "test":
            self.emit(describe(doc, {}, now))
            return web.Response(text="ok")
        for finding in doc.get("findings") or ():
            if isinstance(finding, Mapping):
                self.findings += 1
                self.emit(describe(doc, finding, now))
        return web.Response(text="ok")
