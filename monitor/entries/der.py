"""A small, strict DER reader: enough to walk RFC 3161 timestamps and certificate fields that
``cryptography`` does not decode. Bounds-checked; raises only ``MalformedInputError``."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.errors import MalformedInputError

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
UTF8_STRING = 0x0C
MAX_ITEMS = 4096


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes


def read(data: bytes, what: str) -> Tlv:
    """Exactly one TLV spanning all of ``data``."""
    tlv, end = _read_at(data, 0, what)
    if end != len(data):
        raise MalformedInputError(f"{what}: {len(data) - end} trailing bytes after DER value")
    return tlv


def children(tlv: Tlv, what: str) -> list[Tlv]:
    """The TLVs inside a constructed value, in order."""
    out: list[Tlv] = []
    pos = 0
    data = tlv.value
    while pos < len(data):
        if len(out) >= MAX_ITEMS:
            raise MalformedInputError(f"{what}: more than {MAX_ITEMS} DER items")
        item, pos = _read_at(data, pos, what)
        out.append(item)
    return out


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv.tag != tag:
        raise MalformedInputError(f"{what}: expected DER tag {tag:#04x}, got {tlv.tag:#04x}")
    return tlv


def _read_at(data: bytes, pos: int, what: str) -> tuple[Tlv, int]:
    if pos + 2 > len(data):
        raise MalformedInputError(f"{what}: truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise MalformedInputError(f"{what}: multi-byte DER tags are not supported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise MalformedInputError(f"{what}: unsupported DER length encoding")
        if pos + n > len(data):
            raise MalformedInputError(f"{what}: truncated DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        if length < 0x80 or data[pos] == 0:
            raise MalformedInputError(f"{what}: non-minimal DER length")
        pos += n
    end = pos + length
    if end > len(data):
        raise MalformedInputError(f"{what}: DER value runs past the end of the data")
    return Tlv(tag, data[pos:end]), end


def decode_oid(value: bytes, what: str) -> str:
    if not value or value[-1] & 0x80:
        raise MalformedInputError(f"{what}: malformed OID")
    arcs: list[int] = []
    n = 0
    for b in value:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))
