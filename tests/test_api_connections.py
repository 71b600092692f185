"""The API's connection limits over loopback, with raw sockets that behave as slow, idle,
cut-off or hostile clients: a request head that trickles is cut at ``header_timeout``, an idle
connection at ``keepalive_timeout``, a body at ``body_timeout`` (408); at
``max_connections`` the connection waiting longest makes room, or a 503 when all are busy; a
deeply nested body is a 400 and a client gone mid-body is neither a 500 nor an error line."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from monitor.storage.store import Store
from tests.api_support import WRITE_TOKEN, Client, served
from tests.simlog import run

ACK = "/api/v1/findings/1/ack"
DROPPED = "tlog_monitor_api_connections_dropped_total"
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An empty database: these tests are about connections, not what the API reads."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"

    async def create() -> None:
        await (await Store.open(url)).close()

    run(create)
    return url


async def connect(c: Client) -> Stream:
    host, port = c.base.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


def post_head(length: int) -> bytes:
    return (
        f"POST {ACK} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def closed_after(reader: asyncio.StreamReader, timeout: float = 5.0) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends)."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(4096):
                pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response: status, headers (lower-case names), body."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines if line)
        headers = {k.lower(): v for k, v in headers.items()}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def sample(c: Client, name: str, **labels: str) -> float:
    return c.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("blank", [b"", b"\r\n\r\n"], ids=["head", "blank-lines-first"])
def test_a_trickled_request_head_is_cut_at_header_timeout(url: str, blank: bytes) -> None:
    async def body() -> None:
        async with served(url, header_timeout="300ms") as c:
            reader, writer = await connect(c)
            writer.write(blank + b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            start = time.monotonic()
            closed = False
            while not closed and time.monotonic() - start < 5:
                try:
                    closed = not await asyncio.wait_for(reader.read(4096), 0.05)
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")  # one more header line, never the end
                except ConnectionResetError:
                    closed = True
            took = time.monotonic() - start
            assert closed
            assert 0.25 <= took < 1.5, took
            assert sample(c, DROPPED, reason="header_timeout") == 1
            # a client that sends its request at once is served as usual
            assert await c.get("/healthz", token=None) == (200, {"status": "ok"})
            writer.close()

    run(body)


def test_an_idle_connection_is_closed_at_keepalive_timeout(url: str) -> None:
    async def body() -> None:
        async with served(url, keepalive_timeout="400ms") as c:
            reader, writer = await connect(c)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, doc = await response(reader)
            assert (status, json.loads(doc)) == (200, {"status": "ok"})
            idle = await closed_after(reader)
            assert 0.35 <= idle < 2.0, idle
            writer.close()
            # a connection that never sends a byte is closed after the same time
            reader, writer = await connect(c)
            silent = await closed_after(reader)
            assert 0.35 <= silent < 2.0, silent
            writer.close()

    run(body)


def test_at_the_cap_the_connection_waiting_longest_makes_room(url: str) -> None:
    async def body() -> None:
        async with served(url, max_connections=4) as c:
            idle = [await connect(c) for _ in range(4)]
            deadline = time.monotonic() + 5
            while sample(c, "tlog_monitor_api_connections") < 4:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            reader, writer = await connect(c)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await response(reader))[0] == 200
            assert await closed_after(idle[0][0]) < 1.0  # the oldest idle one
            for r, _ in idle[1:]:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(r.read(1), 0.2)
            assert sample(c, DROPPED, reason="evicted") == 1
            assert sample(c, "tlog_monitor_api_connections_refused_total") == 0
            for _, w in [*idle, (reader, writer)]:
                w.close()

    run(body)


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused(url: str) -> None:
    async def body() -> None:
        async with served(url, max_connections=2, body_timeout="2s") as c:
            busy = []
            for _ in range(2):  # each mid-request: the handler waits for the rest of the body
                reader, writer = await connect(c)
                writer.write(post_head(20) + b'{"comm')
                busy.append((reader, writer))
            await asyncio.sleep(0.3)
            reader, writer = await connect(c)
            status, headers, doc = await response(reader)
            assert status == 503
            assert headers["retry-after"] == "1"
            assert json.loads(doc)["error"]["code"] == "too_many_connections"
            assert sample(c, "tlog_monitor_api_connections_refused_total") == 1
            # the busy ones finish as usual: no finding 1 in an empty database
            for r, w in busy:
                w.write(b'ent": "x"}    ')  # the 20 bytes announced
                assert (await response(r))[0] == 404
                w.close()
            writer.close()

    run(body)


def test_a_body_that_does_not_arrive_in_time_is_a_408(url: str) -> None:
    async def body() -> None:
        async with served(url, body_timeout="300ms") as c:
            reader, writer = await connect(c)
            start = time.monotonic()
            writer.write(post_head(50) + b'{"comment": ')
            status, headers, doc = await response(reader)
            assert time.monotonic() - start >= 0.29
            assert status == 408
            assert headers["connection"] == "close"
            assert json.loads(doc)["error"]["code"] == "request_timeout"
            assert await closed_after(reader) < 3.0
            writer.close()

    run(body)


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b'{"comment": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001],
    ids=["arrays", "objects"],
)
def test_a_deeply_nested_body_is_a_400(url: str, data: bytes) -> None:
    async def body() -> None:
        async with served(url) as c:
            status, doc, _ = await c.call(
                "POST",
                ACK,
                token=WRITE_TOKEN,
                data=data,
                headers={"Content-Type": "application/json"},
            )
            assert status == 400, doc
            assert doc["error"]["code"] == "bad_body"
            assert "nested too deeply" in doc["error"]["message"]
            assert sample(c, "tlog_monitor_api_requests_total", status="500") == 0

    run(body)


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def error_lines() -> Iterator[list[logging.LogRecord]]:
    """Every record at error level or above that the monitor, aiohttp or asyncio log."""
    handler = _Collect(logging.ERROR)
    records = handler.records
    loggers = [logging.getLogger(n) for n in ("monitor", "aiohttp", "asyncio")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield records
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def test_a_client_gone_mid_body_is_not_an_error(url: str) -> None:
    async def body() -> None:
        with error_lines() as errors:
            async with served(url) as c:
                for _ in range(3):
                    _, writer = await connect(c)
                    writer.write(post_head(1000) + b'{"comment": "half')
                    await writer.drain()
                    await asyncio.sleep(0.1)  # the handler is reading the body
                    writer.transport.abort()
                labels: dict[str, Any] = {"route": "/api/v1/findings/{id}/ack", "method": "POST"}
                deadline = time.monotonic() + 5
                while sample(c, "tlog_monitor_api_requests_total", **labels, status="499") < 3:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
                assert sample(c, "tlog_monitor_api_requests_total", **labels, status="500") == 0
                assert await c.get("/healthz", token=None) == (200, {"status": "ok"})
        assert [r.getMessage() for r in errors] == []

    run(body)


def test_the_cap_is_at_most_a_quarter_of_the_open_file_limit() -> None:
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
        "from monitor.api.server import connection_cap; "
        "print(connection_cap(256), connection_cap(10))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["16", "10"]
