"""Delivering the outbox: one worker per sink, at least once, in the order findings were found.

The outbox rows are written with their findings (and a resolve row when a finding clears), so
a crash anywhere loses nothing: whatever was not marked delivered is sent again, with the same
idempotency key (Standard Webhooks ``webhook-id``, PagerDuty ``dedup_key``, the findings'
dedup keys in every payload) so that receivers can drop repeats.

A message's ``webhook-id`` is recorded on its rows when they are first claimed
(``outbox.message_id``), and a row that carries one is only ever sent again under it, with
the other pending rows that carry it: whichever process sends it next (another replica, after
a restart) sends the same message under the same id, however it would group the rows now.
Several replicas deliver side by side: only the holder of a row's claim posts it; a claim
expires, and on PostgreSQL with several replicas (``OutboxStore.replicated``) the claim of a
replica whose heartbeat expired is free at once.

Per sink:
- rows go out in creation order; a row waiting for its retry holds back the ones behind it;
- triggers of one rule that arrive within ``group_window`` go out as one message (every row is
  still marked delivered on its own, so nothing is lost from the record);
- at most ``rate_limit_per_minute`` messages a minute (a token bucket); the rest wait;
- a failure (5xx, timeout, connection) is retried with capped exponential backoff and
  jitter; ``Retry-After`` is honoured; a 4xx other than 408/425/429 will not get better, and
  the row is dead-lettered at once; so is a row older than ``max_age`` or tried
  ``max_attempts`` times; dead letters are listed by ``tlog-monitor alerts dead`` and can be
  replayed (a replayed row is tried again up to ``max_attempts`` times, whatever its age);
- a row that does not decode (``events.decode_row``: corrupt, or of a version that wrote
  another shape) will not get better either: it is dead-lettered at once, the error naming
  the field;
- 410 Gone disables the sink (until restart): the daemon raises a ``health`` finding and rows
  wait, undelivered, for a fixed configuration;
- Alertmanager is reminded of every active alert before its ``endsAt`` passes.

Errors name the sink and its host at most: a Slack webhook URL is itself a secret.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from monitor.alerts.causes import error_cause, http_cause
from monitor.alerts.events import Alert, Queued, decode_finding, decode_row
from monitor.alerts.formats import FORMATS
from monitor.alerts.message import (
    ALERTMANAGER_RESEND_AFTER,
    Context,
    EntryUrl,
    Message,
    message_id,
)
from monitor.alerts.payloads import test_message
from monitor.config.models import AlertSettings, SinkSettings
from monitor.core.aio import backoff_delay, wait_any
from monitor.core.errors import MalformedInputError
from monitor.core.metrics import AlertMetrics
from monitor.core.ratelimit import TokenBucket
from monitor.logclient.http import retry_after_seconds
from monitor.storage.outbox import OutboxItem
from monitor.storage.ports import OutboxStore

__all__ = ["Outcome", "SinkWorker", "post", "request_url", "send_test"]

log = logging.getLogger("monitor.alerts")

GROUP_MAX = 50  # findings in one message at most
RETRY_BASE = 5.0  # seconds before the first retry
RETRY_CAP = 600.0
MAX_RESPONSE = 64 << 10  # bytes of a receiver's answer read (and then dropped)
_PERMANENT = frozenset(range(400, 500)) - {408, 425, 429}
ALERTMANAGER_ALERTS_PATH = "/api/v2/alerts"
# a claim outlives the post it covers (the sink's timeout) by this much: a process that stalls
# longer loses its rows to another, which sends them again under the same message id
CLAIM_MARGIN = timedelta(seconds=60)
# several replicas: how soon a row claimed by a live one is looked at again (were that replica
# to die, its claim is free as soon as its heartbeat expires, long before the claim would)
CLAIM_POLL = 1.0


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: ``status`` (None when no response), a safe ``reason``."""

    status: int | None
    reason: str  # bounded (a status or an error class): a metric label and the stored error
    duration: float
    retry_after: float | None = None
    cause: str = ""  # in words, for people (``monitor.alerts.causes``); never the URL

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def request_url(sink: SinkSettings) -> str:
    """Where the sink's messages are posted: its endpoint, except that an Alertmanager is
    configured by its base URL (with or without a trailing slash, or the path prefix of a
    proxy) and takes alerts at ``<base>/api/v2/alerts``; a URL that already ends in that
    path is kept as it is."""
    url = sink.endpoint()
    if sink.type != "alertmanager":
        return url
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith(ALERTMANAGER_ALERTS_PATH):
        path += ALERTMANAGER_ALERTS_PATH
    return urlunsplit(parts._replace(path=path))


async def post(session: aiohttp.ClientSession, sink: SinkSettings, msg: Message) -> Outcome:
    """POST ``msg`` to the sink's ``request_url``; never raises for the network's sake."""
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=sink.timeout.total_seconds())
    try:
        async with session.post(
            request_url(sink),
            data=msg.body,
            headers=msg.headers,
            timeout=timeout,
            allow_redirects=False,  # a redirect could carry a signed alert elsewhere
        ) as resp:
            await resp.content.read(MAX_RESPONSE)
            retry = retry_after_seconds(resp.headers.get("Retry-After"))
            took = time.perf_counter() - started
            return Outcome(resp.status, f"HTTP {resp.status}", took, retry, http_cause(resp.status))
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        # the class only: aiohttp's messages may quote the URL, and a Slack URL is a secret
        cause = error_cause(e, sink.host, sink.timeout.total_seconds())
        return Outcome(None, type(e).__name__, time.perf_counter() - started, cause=cause)


async def send_test(
    session: aiohttp.ClientSession, sink: SinkSettings, *, now: datetime | None = None
) -> Outcome:
    """``tlog-monitor alerts test``: a clearly marked test alert, straight to the sink."""
    return await post(session, sink, test_message(sink, now=now or datetime.now(UTC)))


class SinkWorker:
    def __init__(
        self,
        sink: SinkSettings,
        store: OutboxStore,
        session: aiohttp.ClientSession,
        alerts: AlertSettings,
        *,
        metrics: AlertMetrics | None = None,
        entry_url: EntryUrl | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_base: float = RETRY_BASE,
        resend_after: timedelta = ALERTMANAGER_RESEND_AFTER,
    ) -> None:
        self.sink = sink
        self.store = store
        self.session = session
        self.alerts = alerts
        self.metrics = metrics
        self.entry_url = entry_url
        self.clock = clock
        self.retry_base = retry_base
        self.resend_after = resend_after
        per_second = sink.rate_limit_per_minute / 60.0
        self.bucket = TokenBucket(per_second, burst=float(min(10, sink.rate_limit_per_minute)))
        self.disabled: str | None = None
        self._reminded: datetime | None = None
        self._wake = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        if metrics is not None:
            metrics.known(sink.name)

    def wake(self) -> None:
        """New rows may be waiting: a commit queued them (``Store.queued``)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                delay = await self.step()
            except Exception as e:
                log.warning(
                    "delivery failed: %s",
                    type(e).__name__,
                    extra={"fields": {"sink": self.sink.name}},
                )
                delay = 5.0
            await self._wait(stop, idle if delay is None else delay)

    async def drain(self, deadline: float) -> int:
        """Deliver what is due now, without waiting for group windows, until nothing is due
        or ``deadline`` (monotonic) passes (``once``). How many rows are still pending."""
        while time.monotonic() < deadline and self.disabled is None:
            delay = await self.step(group_wait=False)
            if delay is None or delay > 0:
                break
        return len(await self.store.pending_outbox(self.sink.name, limit=1000))

    async def step(self, *, group_wait: bool = True) -> float | None:
        """One delivery (or dead letter); seconds until the next is due, 0 to go on at once,
        None when nothing waits."""
        if self.metrics is not None:
            await self._gauge_outbox(self.metrics)
        if self.disabled is not None:
            return None
        await self._remind()
        delay = await self._deliver(group_wait)
        if delay is None or self._reminded is None:
            return delay
        # Alertmanager: come back in time for the next reminder, whatever the rows wait for
        due = (self._reminded + self.resend_after - self.clock()).total_seconds()
        return min(delay, max(due, 0.0))

    async def _deliver(self, group_wait: bool) -> float | None:
        items = await self.store.pending_outbox(self.sink.name, limit=GROUP_MAX)
        if not items:
            return None
        now = self.clock()
        head = await self._head(items[0], now)
        if head is None:
            return 0.0  # dead-lettered: on to the next
        row = head.item
        holder = self.store.holder.name
        wait = await self._not_yet(row, holder, now)
        if wait is not None:
            return wait
        if row.message_id is not None:
            # claimed before (a failed post, or one a dead process may have made): the same
            # message again, whatever the rows would be grouped into now
            group = await self._message(head, row.message_id, now)
            return 0.0 if group is None else await self._post(group, holder, row.message_id)
        group = self._group(head, items[1:], now)
        window_ends = row.created_at + self.sink.group_window
        first_try = row.attempts == 0 and len(group) < GROUP_MAX
        if group_wait and _groupable(head) and first_try and now < window_ends:
            return (window_ends - now).total_seconds()  # let the rest of the group arrive
        return await self._post(group, holder, None)

    async def _not_yet(self, row: OutboxItem, holder: str, now: datetime) -> float | None:
        """Seconds to wait before ``row`` may be posted: until its retry is due, or while
        another process holds a live claim on it (it is posting it now); None: post it now."""
        if row.next_attempt_at > now:
            return (row.next_attempt_at - now).total_seconds()
        if self.store.exclusive:
            return None  # the only monitor: others' claims are dead ones
        other, until = row.claimed_by, row.claimed_until
        if not row.claimed_by_other(holder, now) or other is None or until is None:
            return None
        left = max(1.0, (until - now).total_seconds())
        if not self.store.replicated:
            return left
        if not await self.store.live_holder(other, now=now):
            return None  # a dead replica's claim: free at once (the claim checks it again)
        return min(left, CLAIM_POLL)

    async def _message(self, head: Queued, msg_id: str, now: datetime) -> list[Queued] | None:
        """The pending rows of the message ``msg_id``, the head first: every one that carries
        it. They are consecutive but for a row committed late between them, which goes out
        after: the receiver must get the whole message under its id, for a part sent alone
        under it after it took another part would be dropped as a repeat. None when a row no
        longer decodes (it is dead-lettered instead)."""
        rows = await self.store.pending_outbox(self.sink.name, GROUP_MAX, message_id=msg_id)
        group = [head]
        for item in rows:
            if item.id == head.item.id:
                continue
            try:
                group.append(decode_row(item))
            except MalformedInputError as e:
                await self._dead([item], now, f"cannot be read: {e}", 0.0)
                return None
        return group

    async def _head(self, item: OutboxItem, now: datetime) -> Queued | None:
        """The first row, decoded; None when it is dead-lettered instead (too old, tried too
        often, or unreadable)."""
        why = await self._expired(item, now)
        if why is None:
            try:
                return decode_row(item)
            except MalformedInputError as e:
                why = f"cannot be read: {e}"
        await self._dead([item], now, why, 0.0)
        return None

    async def _post(self, group: list[Queued], holder: str, msg_id: str | None) -> float:
        """Claim the group under its message id (``msg_id``, the one its rows carry, or a new
        one derived from its findings), post it as one message and record the outcome."""
        await self.bucket.acquire()
        now = self.clock()
        until = now + self.sink.timeout + CLAIM_MARGIN
        ids = [q.item.id for q in group]
        alert = Alert(group[0].event, tuple(q.finding for q in group))
        if msg_id is None:
            msg_id = message_id(alert.event, alert.dedup_keys)
        taken = await self.store.claim_outbox(
            ids,
            holder,
            now=now,
            until=until,
            take_over=self.store.exclusive,
            message_id=msg_id,
            dead_holders_free=self.store.replicated,
        )
        if not taken:
            return 1.0  # another process claimed some of them meanwhile: read again
        msg = self._render(alert, now, msg_id)
        outcome = await post(self.session, self.sink, msg)
        await self._settle([q.item for q in group], msg, outcome, now)
        return 0.0

    def _render(self, alert: Alert, now: datetime, msg_id: str) -> Message:
        ctx = Context(now, self.entry_url, self.resend_after, msg_id)
        return FORMATS[self.sink.type](self.sink, alert, ctx)

    async def _gauge_outbox(self, m: AlertMetrics) -> None:
        """The rows waiting, and how long the oldest has (a disabled sink's rows too)."""
        depth, oldest = await self.store.outbox_backlog(self.sink.name)
        age = 0.0 if oldest is None else max(0.0, (self.clock() - oldest).total_seconds())
        m.depth.labels(self.sink.name).set(depth)
        m.oldest_age.labels(self.sink.name).set(age)

    async def _expired(self, item: OutboxItem, now: datetime) -> str | None:
        if item.attempts >= self.alerts.max_attempts:
            return f"gave up after {item.attempts} attempts: {item.last_error}"
        if now - item.created_at > self.alerts.max_age and not await self._replayed(item):
            return f"gave up: older than {self.alerts.max_age}; last error: {item.last_error}"
        return None

    async def _replayed(self, item: OutboxItem) -> bool:
        """A pending row that was dead-lettered before: an operator replayed it, and it is
        not to die of old age again before it is even tried."""
        return any(a.status == "dead" for a in await self.store.attempts(item.id))

    def _group(self, head: Queued, rest: list[OutboxItem], now: datetime) -> list[Queued]:
        """The head and the due triggers of its rule written within its group window."""
        # PagerDuty groups events into incidents itself, and a resolve there closes only the
        # dedup key it names: each finding is its own event, so that resolving one (by the
        # API, say) closes what its trigger opened
        if (
            not _groupable(head)
            or self.sink.group_window <= timedelta()
            or self.sink.type == "pagerduty"
        ):
            return [head]
        first = head.item
        ends = first.created_at + self.sink.group_window
        group = [head]
        for item in rest:
            try:
                q = decode_row(item)
            except MalformedInputError:
                break  # dead-lettered when it heads the rows
            same = q.event == head.event and q.finding.rule == head.finding.rule
            if not same or item.created_at > ends or item.next_attempt_at > now:
                break  # order is kept: a group never jumps over another row
            if item.message_id is not None:
                break  # claimed before, under a message of its own: sent again as that one
            if first.attempts and (item.attempts, item.next_attempt_at) != (
                first.attempts,
                first.next_attempt_at,
            ):
                # rows tried before message ids were recorded: a retry is the message that
                # failed, as it was, with the same webhook-id
                break
            others = not self.store.exclusive and item.claimed_by_other(self.store.holder.name, now)
            if not _groupable(q) or others:
                break
            group.append(q)
        return group

    async def _settle(
        self, group: list[OutboxItem], msg: Message, outcome: Outcome, now: datetime
    ) -> None:
        name = self.sink.name
        m = self.metrics
        if m is not None:
            m.latency.labels(name).observe(outcome.duration)
        if outcome.ok:
            ids = [item.id for item in group]
            await self.store.mark_message_delivered(ids, at=now, duration=outcome.duration)
            if m is not None:
                m.messages.labels(name, msg.event).inc()
                m.deliveries.labels(name, "delivered").inc(len(group))
            log.info(
                "alert delivered",
                extra={"fields": {"sink": name, "event": msg.event, "findings": len(group)}},
            )
            return
        if m is not None:
            m.failures.labels(name, outcome.reason).inc()
            if outcome.status not in _PERMANENT or outcome.status == 410:
                m.deliveries.labels(name, "failed").inc(len(group))
        if outcome.status == 410:
            self.disabled = f"{self.sink.host} answered 410 Gone"
            if m is not None:
                m.disabled.labels(name).set(1)
            for item in group:  # kept, undelivered, for when the sink is fixed
                await self.store.record_attempt(
                    item.id, at=now, error=outcome.reason, duration=outcome.duration, retry_at=now
                )
            log.error("alert sink disabled: 410 Gone", extra={"fields": {"sink": name}})
            return
        if outcome.status in _PERMANENT:
            await self._dead(group, now, f"refused: {outcome.reason}", outcome.duration)
            return
        attempts = group[0].attempts + 1
        delay = backoff_delay(attempts, self.retry_base, RETRY_CAP, self._rng)
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, RETRY_CAP))
        retry_at = now + timedelta(seconds=delay)
        for item in group:
            await self.store.record_attempt(
                item.id, at=now, error=outcome.reason, duration=outcome.duration, retry_at=retry_at
            )
        log.warning(
            "alert delivery failed: %s; retry in %.0fs",
            outcome.reason,
            delay,
            extra={"fields": {"sink": name, "attempts": attempts}},
        )

    async def _dead(self, group: list[OutboxItem], now: datetime, why: str, dur: float) -> None:
        for item in group:
            await self.store.record_attempt(item.id, at=now, error=why, duration=dur, retry_at=None)
        if self.metrics is not None:
            self.metrics.deliveries.labels(self.sink.name, "dead_lettered").inc(len(group))
        log.error(
            "alert dead-lettered: %s",
            why,
            extra={"fields": {"sink": self.sink.name, "findings": len(group)}},
        )

    async def _remind(self) -> None:
        """Alertmanager forgets an alert whose ``endsAt`` passed: send the active ones again
        every ``resend_after``."""
        if self.sink.type != "alertmanager":
            return
        now = self.clock()
        if self._reminded is not None and now - self._reminded < self.resend_after:
            return
        self._reminded = now
        # read from the findings table as they are now, not from the outbox: they decode, or
        # the step fails and is logged as any other failure is
        active = tuple(map(decode_finding, await self.store.active_alerts(self.sink.name)))
        if not active:
            return
        ctx = Context(now, resend_after=self.resend_after)
        msg = FORMATS[self.sink.type](self.sink, Alert("trigger", active), ctx)
        outcome = await post(self.session, self.sink, msg)
        if self.metrics is not None:
            if outcome.ok:
                self.metrics.messages.labels(self.sink.name, "reminder").inc()
            else:
                self.metrics.failures.labels(self.sink.name, outcome.reason).inc()

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        await wait_any([stop, self._wake], delay)


def _groupable(q: Queued) -> bool:
    """Only triggers of rule findings are grouped: integrity and health findings resolve one
    by one, and a resolve must name what its trigger named."""
    return q.event == "trigger" and q.finding.rule is not None
