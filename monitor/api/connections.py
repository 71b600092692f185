"""The API's connections, bounded so that clients cannot take the file descriptors the
daemon's log passes, database and alert deliveries need.

- At most ``max_connections`` are open. A new connection beyond them makes room by closing
  the one that has waited longest for a request (a client trickling its request head, or an
  idle keep-alive one): a flood of slow clients keeps churning while a client that sends its
  request at once is served. Only when every open connection is mid-request is the new one
  refused, with a 503.
- A request's head must be complete within ``header_timeout`` of its first byte.

aiohttp itself closes a connection that has no complete request ``keepalive_timeout`` after it
opened or after its last response; a body's deadline is the handler's (``monitor.api.body``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor.api.router import ApiMetrics

# asyncio accepts as many connections at once as the listen backlog it is given: at most half
# the cap, so that a connection admitted in one burst outlives the next, time enough for a
# request sent at once to arrive and be kept; and few, since every connection accepted and
# not yet admitted, or evicted and not yet closed, holds a descriptor for a loop iteration.
# The kernel queues more than that (QUEUE), so that a flood of connections overflows its
# queue, and drops a newcomer's SYN, less often.
ACCEPT_BURST = 64
QUEUE = 1024

_REFUSAL_BODY = json.dumps(
    {
        "error": {
            "status": 503,
            "code": "too_many_connections",
            "message": "every connection the API allows is busy; try again shortly",
            "param": None,
        }
    }
).encode()
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\n" + _REFUSAL_BODY
)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout: float  # seconds from the first byte of a request to the end of its head


class _Conn:
    """One accepted connection's state, which changes with each of its requests."""

    __slots__ = ("busy", "headed", "requests", "tail", "timer", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.busy = False  # a request is being handled
        self.headed = False  # a complete request head arrived, not yet handled
        self.tail = b""  # the last bytes received while waiting, to find a head's end
        self.requests = 0  # requests begun: a head timer belongs to one of them
        self.timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    def __init__(self, limits: ConnectionLimits, metrics: ApiMetrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self._open: dict[asyncio.BaseTransport, _Conn] = {}
        # the connections waiting for a request, longest-waiting first (insertion order)
        self._waiting: dict[_Conn, None] = {}
        metrics.connections.set_function(lambda: len(self._open))

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for the listener, around aiohttp's (``inner``)."""
        return lambda: _GuardedProtocol(self, inner)

    def admit(self, transport: asyncio.Transport) -> _Conn | None:
        """The new connection's state, or None when it was refused."""
        if len(self._open) >= self.limits.max_connections:
            victim = next(iter(self._waiting), None)
            if victim is None:
                self.metrics.refused.inc()
                _refuse(transport)
                return None
            self.metrics.dropped.labels("evicted").inc()
            self._drop(victim)
        conn = _Conn(transport)
        self._open[transport] = conn
        self._waiting[conn] = None
        return conn

    def received(self, conn: _Conn, data: bytes) -> None:
        """Bytes arrived: the first of a request's head starts its clock, and the end of the
        head makes the connection one to keep (aiohttp handles the request a moment later)."""
        if conn.busy or conn.headed or self._open.get(conn.transport) is not conn:
            return
        if conn.timer is None:
            conn.timer = asyncio.get_running_loop().call_later(
                self.limits.header_timeout, self._head_overdue, conn, conn.requests
            )
        # blank lines before a request line end no head (else they would make a connection
        # that never sends a request one to keep)
        seen = conn.tail + data if conn.tail else data.lstrip(b"\r\n")
        if b"\r\n\r\n" in seen:
            conn.headed = True
            self._waiting.pop(conn, None)
            self._stop_clock(conn)
            return
        conn.tail = seen[-3:]

    def lost(self, conn: _Conn) -> None:
        self._forget(conn)

    def _head_overdue(self, conn: _Conn, begun: int) -> None:
        conn.timer = None
        if conn.busy or conn.headed or conn.requests != begun:
            return
        if self._open.get(conn.transport) is not conn:
            return
        self.metrics.dropped.labels("header_timeout").inc()
        self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        self._forget(conn)
        conn.transport.abort()

    @staticmethod
    def _stop_clock(conn: _Conn) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    def _forget(self, conn: _Conn) -> None:
        self._stop_clock(conn)
        if self._open.get(conn.transport) is conn:
            del self._open[conn.transport]
        self._waiting.pop(conn, None)

    @property
    def middleware(self) -> Middleware:
        """Marks a connection busy while one of its requests is handled (its head complete),
        and waiting again after."""

        @web.middleware
        async def track(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            transport = request.transport
            conn = None if transport is None else self._open.get(transport)
            if conn is None:
                return await handler(request)
            conn.busy, conn.headed = True, False
            conn.requests += 1
            self._stop_clock(conn)
            self._waiting.pop(conn, None)
            try:
                return await handler(request)
            finally:
                conn.busy, conn.tail = False, b""
                if self._open.get(conn.transport) is conn:
                    self._waiting[conn] = None

        return track


def _refuse(transport: asyncio.Transport) -> None:
    try:
        transport.write(_REFUSAL)
    finally:
        transport.close()


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, made only once the connection is admitted."""

    def __init__(self, guard: ConnectionGuard, make: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make = make
        self._conn: _Conn | None = None
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a listener's transports are socket transports
        self._conn = self._guard.admit(cast(asyncio.Transport, transport))
        if self._conn is not None:
            self._inner = self._make()
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None and self._conn is not None:
            self._inner.data_received(data)
            self._guard.received(self._conn, data)

    def eof_received(self) -> bool | None:
        return None if self._inner is None else self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._guard.lost(self._conn)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP listener whose connections ``guard`` admits and bounds."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard):
        burst = max(1, min(ACCEPT_BURST, guard.limits.max_connections // 2))
        super().__init__(runner, backlog=burst)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # set up before any site starts
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server), self._host, self._port, backlog=self._backlog
        )
        for sock in self._server.sockets:
            with sock.dup() as listening:  # the same socket: listen again, with a longer queue
                listening.listen(max(QUEUE, self._backlog))
