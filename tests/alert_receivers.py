"""Real HTTP alert receivers on loopback, for the delivery tests.

One aiohttp server plays every kind of receiver, by path:

- ``/hook``: a generic webhook; checks the Standard Webhooks signature (``signing.verify``)
  and answers 401 when it is wrong; idempotency key: the ``webhook-id`` header;
- ``/slack/...``: a Slack incoming webhook (the rest of the path is the secret part of a Slack
  URL); no idempotency key: every request counts;
- ``/pagerduty``: PagerDuty Events API v2: answers 202 ``{"status": "success", ...}``; key:
  ``dedup_key`` and ``event_action``;
- ``/api/v2/alerts``: Alertmanager (also under a path prefix, as behind a proxy: the full path
  is in ``full_path``): answers 200; one key per alert: its ``dedup_key`` label and whether
  its ``endsAt`` has passed (firing or resolved).

Every request is recorded (path, headers, raw and parsed body, time, what was answered). A
request the receiver *processed* (it answered 2xx, or was going to and was merely slow) marks
its keys as seen, the way a real receiver remembers what it handled: ``unique`` is what is
left after dropping repeats. Answers can be scripted per path (``script``): statuses, a
``Retry-After`` header, or a delay longer than the sender's timeout. ``stop`` and ``start``
take the receiver down and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from monitor.alerts.signing import verify
from monitor.config.webhook_secrets import parse_secrets

HOOK, SLACK, PAGERDUTY, ALERTMANAGER = "/hook", "/slack", "/pagerduty", "/api/v2/alerts"
FORMATS = (HOOK, SLACK, PAGERDUTY, ALERTMANAGER)
_DEFAULT_STATUS = {HOOK: 200, SLACK: 200, PAGERDUTY: 202, ALERTMANAGER: 200}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``status`` after ``delay`` seconds, with ``Retry-After`` if given."""

    status: int
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class Received:
    """One request as it arrived."""

    path: str  # the format's path (a Slack or prefixed request's full path: ``full_path``)
    full_path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    json: Any
    at: float  # the receiver's clock (Unix seconds) on arrival
    status: int  # what it was answered
    signature_valid: bool | None  # webhooks only
    keys: tuple[str, ...]  # idempotency keys (one per Alertmanager alert; none for Slack)
    new_keys: tuple[str, ...] = ()  # those first seen in this request (processed ones only)

    @property
    def processed(self) -> bool:
        return 200 <= self.status < 300

    @property
    def duplicate(self) -> bool:
        """A processed repeat: every key of it was seen before."""
        return self.processed and bool(self.keys) and not self.new_keys


@dataclass
class Receiver:
    """The receiver server. ``clock`` (Unix seconds) checks webhook timestamps and tells a
    resolved Alertmanager alert from a firing one: give it the sender's fake clock."""

    secret: str | None = None
    clock: Callable[[], float] = time.time
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _defaults: dict[str, Reply] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port the first time, the same port after)."""
        app = web.Application()
        app.router.add_post(HOOK, self._handle)
        app.router.add_post(SLACK + "/{rest:.*}", self._handle)
        app.router.add_post(PAGERDUTY, self._handle)
        app.router.add_post(ALERTMANAGER, self._handle)
        app.router.add_post("/{prefix:.+}" + ALERTMANAGER, self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = int(runner.addresses[0][1])
        self._closing = asyncio.Event()
        self._runner = runner

    async def stop(self) -> None:
        """Down: connections are refused until ``start`` again (slow answers end now)."""
        self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- behaviour ---------------------------------------------------------------------

    def script(
        self, path: str, replies: Iterable[Reply | int], *, then: Reply | int | None = None
    ) -> None:
        """Answer the next requests to ``path`` with ``replies`` in turn, then ``then`` (the
        format's normal success when None)."""
        self._scripts[path] = deque(_reply(r) for r in replies)
        if then is None:
            self._defaults.pop(path, None)
        else:
            self._defaults[path] = _reply(then)

    def _next_reply(self, path: str) -> Reply:
        queue = self._scripts.get(path)
        if queue:
            return queue.popleft()
        return self._defaults.get(path, Reply(_DEFAULT_STATUS[path]))

    # --- what arrived ------------------------------------------------------------------

    def at(self, path: str) -> list[Received]:
        """Every request to ``path``, in arrival order."""
        return [r for r in self.requests if r.path == path]

    def processed(self, path: str) -> list[Received]:
        return [r for r in self.at(path) if r.processed]

    def unique(self, path: str) -> list[Received]:
        """What a deduplicating receiver acted on: processed requests with a key not seen
        before (every processed Slack request: Slack has no key)."""
        return [r for r in self.processed(path) if not r.duplicate]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Until ``predicate()`` holds (checked whenever a request arrives)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(predicate)

    # --- the handler -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        now = self.clock()
        path = request.path
        if path.startswith(SLACK + "/"):
            path = SLACK
        elif path.endswith(ALERTMANAGER):
            path = ALERTMANAGER
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            doc: Any = json.loads(body)
        except ValueError:
            doc = None
        valid: bool | None = None
        if path == HOOK:
            secrets = parse_secrets(self.secret) if self.secret else ()
            valid = verify(headers, body, secrets, now=int(now))
        reply = self._next_reply(path)
        status = reply.status
        if doc is None:
            status = 400
        elif valid is False:
            status = 401
        keys = _keys(path, headers, doc, now) if doc is not None else ()
        rec = Received(path, request.path, headers, body, doc, now, status, valid, keys)
        if rec.processed:
            new = [k for k in keys if (path, k) not in self._seen]
            self._seen.update((path, k) for k in keys)
            rec.new_keys = tuple(new)
        self.requests.append(rec)
        async with self._arrived:
            self._arrived.notify_all()
        if reply.delay > 0:  # processed at once, answered late (or never: the sender gave up)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        hdrs = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
        if path == PAGERDUTY and 200 <= status < 300:
            key = doc.get("dedup_key") if isinstance(doc, dict) else None
            answer = {"status": "success", "message": "Event processed", "dedup_key": key}
            return web.json_response(answer, status=status, headers=hdrs)
        if path == PAGERDUTY:
            answer = {"status": "invalid event", "message": "Event object is invalid"}
            return web.json_response(answer, status=status, headers=hdrs)
        return web.Response(status=status, text="ok" if status < 300 else "no", headers=hdrs)


def _reply(r: Reply | int) -> Reply:
    return r if isinstance(r, Reply) else Reply(r)


def _keys(path: str, headers: dict[str, str], doc: Any, now: float) -> tuple[str, ...]:
    """The idempotency keys a receiver of this format would deduplicate on."""
    if path == HOOK:
        return (headers.get("webhook-id", ""),)
    if path == PAGERDUTY and isinstance(doc, dict):
        return (f"{doc.get('dedup_key')}/{doc.get('event_action')}",)
    if path == ALERTMANAGER and isinstance(doc, list):
        return tuple(f"{a['labels'].get('dedup_key')}/{alert_state(a, now)}" for a in doc)
    return ()


def alert_state(alert: dict[str, Any], now: float) -> str:
    """``resolved`` when an Alertmanager alert's ``endsAt`` is not after ``now``."""
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")).timestamp()
    return "resolved" if ends <= now else "firing"


def finding_keys(requests: Iterable[Received]) -> list[str]:
    """The findings' dedup keys named by webhook bodies, in order (repeats kept)."""
    return [f["dedup_key"] for r in requests for f in r.json["findings"]]
