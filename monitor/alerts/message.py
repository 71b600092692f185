"""What a sink format makes of an alert (a ``Message``: one HTTP POST), the keys that make
retries recognisable, and the one protocol every sink format implements.

A format does no I/O and reads no clock: the delivery worker passes the time (``Context``),
does the HTTP request (to ``deliver.request_url(sink)``) and retries. A ``Message`` is the
same bytes on every retry except where the protocol wants the attempt's time (the Standard
Webhooks timestamp and signature, Alertmanager's ``endsAt``); its ``idempotency_key`` never
changes.

Secrets: the webhook signing secret only ever becomes signatures; the PagerDuty routing key
appears in the PagerDuty body (the Events API requires it there) and nowhere else; the
Slack URL is the sink's endpoint and never enters a message. ``repr(Message)`` shows
neither body nor headers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from monitor.alerts.events import Alert, Event, aware, check_event
from monitor.config.models import SinkSettings
from monitor.core.findings import dedup_key

EntryUrl = Callable[[str, int], str | None]
"""``entry_url(log, index)``: a link to the log entry for people, or None (no link)."""

GROUP_KEY_PREFIX: Final = "group-"
ALERTMANAGER_RESEND_AFTER: Final = timedelta(minutes=1)  # as Prometheus' resend_delay


@dataclass(frozen=True, repr=False)
class Message:
    """One HTTP POST to a sink's endpoint.

    ``idempotency_key`` is derived from the event and the findings' dedup keys only: the same
    for every retry and after restarts, different for trigger and resolve, so that a receiver
    can drop repeats. ``dedup_keys`` are those of every finding the message covers, in order.
    """

    body: bytes
    headers: dict[str, str]
    idempotency_key: str
    event: Event
    dedup_keys: tuple[str, ...]

    def __repr__(self) -> str:
        # body and headers carry signatures and the PagerDuty routing key: never shown
        return (
            f"Message(event={self.event!r}, idempotency_key={self.idempotency_key!r}, "
            f"findings={len(self.dedup_keys)}, body=<{len(self.body)} bytes>, "
            f"headers=<{', '.join(sorted(self.headers))}>)"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class Context:
    """What a format may need besides the alert: the attempt's time (``now``), links to log
    entries, Alertmanager's re-send period, and the webhook message id (default
    ``message_id(...)``, stable across retries: pass another only with the same stability)."""

    now: datetime
    entry_url: EntryUrl | None = None
    resend_after: timedelta = ALERTMANAGER_RESEND_AFTER
    msg_id: str | None = None

    def __post_init__(self) -> None:
        aware(self.now)


class SinkFormat(Protocol):
    """A sink type's format: the message that tells ``sink`` of ``alert``."""

    def __call__(self, sink: SinkSettings, alert: Alert, ctx: Context, /) -> Message: ...


def message(body: bytes, headers: dict[str, str], alert: Alert) -> Message:
    """The message that tells of ``alert`` in ``body``."""
    keys = alert.dedup_keys
    return Message(body, headers, idempotency_key(alert.event, keys), alert.event, keys)


def idempotency_key(event: Event, dedup_keys: Sequence[str]) -> str:
    """Stable for an event about a set of findings (order does not matter): 32 hex digits."""
    check_event(event)
    return dedup_key("tlog-monitor.alert", event, *sorted(set(dedup_keys)))


def message_id(event: Event, dedup_keys: Sequence[str]) -> str:
    """The Standard Webhooks ``webhook-id`` of a message: ``msg_`` + its idempotency key, so
    that retries share it, as the specification asks."""
    return "msg_" + idempotency_key(event, dedup_keys)


def group_key(dedup_keys: Sequence[str]) -> str:
    """The key of what a message is about, the same for its trigger and its resolve: a
    finding's own dedup key, or for a group ``group-`` + a digest of its members' keys (a
    group is resolved only as the same group)."""
    keys = sorted(set(dedup_keys))
    if not keys:
        raise ValueError("no dedup keys")
    if len(keys) == 1:
        return keys[0]
    return GROUP_KEY_PREFIX + dedup_key("tlog-monitor.group", *keys)
