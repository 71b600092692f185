"""A parse worker: the process that ``parsepool`` starts (``python -m
monitor.daemon.parseworker``) to parse and match entries beside the monitor's own process.

It speaks over its stdin and stdout, each message a big-endian 8-byte length and a pickle:
first the watch rules (it answers ``("ready", None)`` once they are compiled), then for each
part of a chunk the Fulcio CAs (``CaSpec``) and the ``Chunk``, answered in order with
``("ok", Parsed)`` or ``("error", text)``; the monitor may send a part before the one before
is answered. It ends when its stdin does (the monitor stopped or died). Its own process, not
``multiprocessing``'s: it loads only the parser and the rules (not the command line and the
whole daemon again) and needs no helper process.

Only the monitor writes to it: its messages are trusted as the monitor's own memory is.
"""

from __future__ import annotations

import functools
import pickle
import queue
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from monitor.core.authority import CertificateAuthority
from monitor.daemon.parsing import parse_all
from monitor.rules.engine import RuleEngine

__all__ = ["CaSpec", "read_message", "write_message"]

HEADER = 8  # bytes: the length of the pickle that follows
IN_FLIGHT = 2
"""Parts the monitor sends a worker before their answers: one parsed, the next read ahead.
The worker's queues (parts read ahead, answers waiting to be written) are as deep."""


@dataclass(frozen=True)
class CaSpec:
    """A Fulcio CA as a worker receives it (certificates do not pickle): DER and validity."""

    uri: str
    chain: tuple[bytes, ...]
    valid_from: datetime | None
    valid_until: datetime | None

    @classmethod
    def of(cls, ca: CertificateAuthority) -> CaSpec:
        chain = tuple(c.public_bytes(Encoding.DER) for c in ca.chain)
        return cls(ca.uri, chain, ca.valid_from, ca.valid_until)

    def ca(self) -> CertificateAuthority:
        chain = tuple(x509.load_der_x509_certificate(der) for der in self.chain)
        return CertificateAuthority(self.uri, chain, self.valid_from, self.valid_until)


def frame(message: object) -> bytes:
    """``message`` as it goes over the pipe: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(HEADER, "big") + data


def write_message(out: IO[bytes], message: object) -> None:
    out.write(frame(message))
    out.flush()


def read_message(src: IO[bytes]) -> Any:
    """The next message, or None once ``src`` ended (mid-message too)."""
    head = src.read(HEADER)
    if len(head) < HEADER:
        return None
    size = int.from_bytes(head, "big")
    data = src.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301  (the monitor's own messages, over its own pipe)


@functools.lru_cache(maxsize=4)
def _cas(specs: tuple[CaSpec, ...]) -> tuple[CertificateAuthority, ...]:
    # the trust root rarely changes: its CAs are rebuilt once per version, not per chunk
    return tuple(s.ca() for s in specs)


def serve(src: IO[bytes], out: IO[bytes]) -> None:
    rules = read_message(src)
    if rules is None:
        return
    engine = RuleEngine.compile(rules)
    write_message(out, ("ready", None))
    # The monitor sends the next part before this one is answered. A thread reads it off the
    # pipe, and another writes answers out, so that this one parses on while the monitor's
    # event loop is busy elsewhere (proving, storing) and reads or writes its pipes late.
    inbox: queue.Queue[Any] = queue.Queue(maxsize=IN_FLIGHT)
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=IN_FLIGHT)
    reader = threading.Thread(target=_read_all, args=(src, inbox), daemon=True)
    writer = threading.Thread(target=_write_all, args=(out, outbox), daemon=True)
    reader.start()
    writer.start()
    while (message := inbox.get()) is not None:
        specs, chunk = message
        try:
            reply: tuple[str, object] = ("ok", parse_all(chunk, engine, _cas(specs)))
        except Exception as e:
            reply = ("error", f"{type(e).__name__}: {e}")
        outbox.put(frame(reply))
    outbox.put(None)
    writer.join()


def _read_all(src: IO[bytes], inbox: queue.Queue[Any]) -> None:
    """Every message of ``src`` into ``inbox``, then None (its end)."""
    try:
        while (message := read_message(src)) is not None:
            inbox.put(message)
    finally:
        inbox.put(None)


def _write_all(out: IO[bytes], outbox: queue.Queue[bytes | None]) -> None:
    """Every frame of ``outbox`` onto ``out`` until None; once the monitor is gone (the pipe
    closed) the rest are dropped, so that the parsing thread never waits on a full queue."""
    gone = False
    while (data := outbox.get()) is not None:
        if gone:
            continue
        try:
            out.write(data)
            out.flush()
        except OSError:
            gone = True


def main() -> int:
    # the monitor stops its workers by closing their stdin; a Ctrl-C meant for the monitor,
    # which the terminal sends to the whole process group, is not the worker's to act on
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    src, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the channel
    serve(src, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
