"""A slowloris client for the API flood test, run as a process of its own so that its load
does not slow the test's event loop: ``python -m tests.slowloris HOST PORT CONNECTIONS SECONDS``.

Each of CONNECTIONS tasks opens a connection, sends the start of a request head and then one
more header line a second, never finishing it; when the server closes the connection, the task
opens another at once. At the end one JSON line on standard output says what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class Stats:
    opened: int = 0  # connections the server accepted
    closed_by_server: int = 0  # ...and closed before the client gave up
    refused: int = 0  # connections that could not be made, or were answered a 503
    open_now: int = 0
    peak_open: int = 0


async def _hold(host: str, port: int, until: float, stats: Stats) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats.refused += 1
            await asyncio.sleep(0.05)
            continue
        stats.opened += 1
        stats.open_now += 1
        stats.peak_open = max(stats.peak_open, stats.open_now)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n")
            while time.monotonic() < until:
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")  # one more line of a head never finished
                    continue
                if data.startswith(b"HTTP/1.1 503"):
                    stats.refused += 1
                stats.closed_by_server += 1
                break
        except OSError:  # reset by the server
            stats.closed_by_server += 1
        finally:
            stats.open_now -= 1
            writer.close()


async def flood(host: str, port: int, connections: int, seconds: float) -> Stats:
    stats = Stats()
    until = time.monotonic() + seconds
    await asyncio.gather(*(_hold(host, port, until, stats) for _ in range(connections)))
    return stats


def main(argv: list[str]) -> int:
    host, port, connections, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    print(json.dumps(asdict(asyncio.run(flood(host, port, connections, seconds)))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
