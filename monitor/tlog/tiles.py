"""C2SP tlog-tiles: tile and entry-bundle paths, partial widths, bundles and hash tiles.

Pure functions shared by the Rekor v2 client and the log simulator. Source: C2SP
``tlog-tiles.md`` and transparency-dev/tessera ``api/layout/{paths,tile}.go``:

- A tile at level ``L``, index ``N`` holds up to 256 consecutive hashes of tree level ``8*L``:
  hash ``i`` is ``MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) * 256**L])``. Level 0 holds leaf
  hashes. The 7 tree levels between two tile levels are recomputed by hashing.
- Paths: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``. ``<L>`` is 0..63 without
  leading zeros; ``<N>`` is split in zero-padded 3-digit groups, all but the last prefixed
  ``x`` (1234067 -> ``x001/x234/067``); ``.p/<W>`` marks a partial tile of width 1..255.
- The partial tile at level ``L`` of a tree of size ``s`` has ``floor(s / 256**L) mod 256``
  hashes; a width of 0 means there is no partial tile (empty tiles are never served).
- An entry bundle is ``repeat { uint16 big-endian length || entry }``; entry ``i`` of bundle
  ``N`` is log entry ``N*256 + i`` and hashes to hash ``i`` of level-0 tile ``N``.

Widths are always explicit here: ``TILE_WIDTH`` (256) means a full tile, 1..255 a partial one.
(Tessera's Go API uses 0 for "full"; that value is rejected here, never silently mapped.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from monitor.core.errors import MalformedInputError

TILE_WIDTH: Final = 256
TILE_HEIGHT: Final = 8  # tree levels per tile level: 256 == 2**8
HASH_SIZE: Final = 32
MAX_TILE_LEVEL: Final = 63
MAX_ENTRY_SIZE: Final = 0xFFFF  # a uint16 length prefix
MAX_TILE_INDEX: Final = 2**64 - 1  # tessera's uint64; parse_tile_path rejects anything larger
ENTRIES: Final = "entries"

_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # [0-9] is ASCII-only, unlike \d or str.isdigit
_INNER_GROUP = re.compile(r"x[0-9]{3}")
_LAST_GROUP = re.compile(r"[0-9]{3}")
_MAX_PATH_LENGTH = 128  # a uint64 index takes 27 characters; anything much longer is garbage

BytesLike = bytes | bytearray | memoryview


class TilePathError(ValueError):
    """A tile or entry-bundle path is not in the canonical C2SP form (serve a 404)."""


class ParsedTilePath(NamedTuple):
    """A parsed ``tile/...`` path. ``width`` is ``TILE_WIDTH`` for a full tile."""

    level: int | Literal["entries"]
    # Shadows tuple.index on purpose: the field is the path's <N>, as in tile_path().
    index: int  # type: ignore[assignment]
    width: int

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH


class TileAddress(NamedTuple):
    """Where a tree node lives in tile space (tessera ``NodeCoordsToTileAddress``).

    The node is hash ``position`` of row ``level % 8`` of tile ``tile_index`` at tile level
    ``tile_level``; row 0 is the tile's stored hashes, row ``r`` is recomputed from them and
    has ``256 >> r`` hashes in a full tile.
    """

    tile_level: int
    tile_index: int
    position: int


@dataclass(frozen=True)
class TileSpan:
    """The part of one level-0 tile / entry bundle that a leaf range needs.

    Fetch ``entries_path(index, width)`` (or ``tile_path(0, index, width)``), decode it, and
    take elements ``[first, first + count)``; they are leaves ``[start, end)`` of the log.
    """

    index: int
    width: int
    first: int
    count: int

    @property
    def start(self) -> int:
        """Log index of the first leaf of the span."""
        return self.index * TILE_WIDTH + self.first

    @property
    def end(self) -> int:
        """Log index one past the last leaf of the span."""
        return self.start + self.count

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def entries_path(self) -> str:
        return entries_path(self.index, self.width)

    @property
    def tile_path(self) -> str:
        return tile_path(0, self.index, self.width)


# -- paths ------------------------------------------------------------------------------------


def encode_index(n: int) -> str:
    """The ``<N>`` path element: 1234067 -> ``x001/x234/067``, 0 -> ``000``."""
    if n < 0:
        raise ValueError(f"tile index must not be negative, got {n}")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def _check_level(level: int) -> None:
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level must be in 0..{MAX_TILE_LEVEL}, got {level}")


def _check_width(width: int) -> None:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(
            f"tile width must be in 1..{TILE_WIDTH} ({TILE_WIDTH} = full tile), got {width}"
        )


def _suffix(index: int, width: int) -> str:
    _check_width(width)
    if not 0 <= index <= MAX_TILE_INDEX:
        raise ValueError(f"tile index must be in 0..2**64-1, got {index}")
    n = encode_index(index)
    return n if width == TILE_WIDTH else f"{n}.p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>`` for a full tile, ``tile/<L>/<N>.p/<W>`` for a partial one."""
    _check_level(level)
    return f"tile/{level}/{_suffix(index, width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>`` for a full bundle, ``tile/entries/<N>.p/<W>`` for a partial one."""
    return f"tile/entries/{_suffix(index, width)}"


class _Reject(Exception):
    """Why a piece of a tile path is bad; parse_tile_path adds the path itself."""


def _parse_level(text: str) -> int | Literal["entries"]:
    if text == ENTRIES:
        return ENTRIES
    if not (_DECIMAL.fullmatch(text) and len(text) <= 2):
        raise _Reject(
            f"level {text!r} is neither 'entries' nor a decimal 0..{MAX_TILE_LEVEL} "
            "without leading zeros"
        )
    level = int(text)
    if level > MAX_TILE_LEVEL:
        raise _Reject(f"level {level} is above {MAX_TILE_LEVEL}")
    return level


def _parse_width(text: str) -> int:
    if not (_DECIMAL.fullmatch(text) and len(text) <= 3):
        raise _Reject(f"partial width {text!r} is not a decimal without leading zeros")
    width = int(text)
    if not 1 <= width < TILE_WIDTH:
        raise _Reject(f"partial width {width} is not in 1..{TILE_WIDTH - 1}")
    return width


def _parse_index(text: str) -> int:
    groups = text.split("/")
    for group in groups[:-1]:
        if not _INNER_GROUP.fullmatch(group):
            raise _Reject(f"index element {group!r} is not 'x' and 3 digits")
    if not _LAST_GROUP.fullmatch(groups[-1]):
        raise _Reject(f"last index element {groups[-1]!r} is not 3 digits")
    if len(groups) > 1 and groups[0] == "x000":
        raise _Reject("index has a leading 'x000' element (not the canonical encoding)")
    index = 0
    for group in groups:
        index = index * 1000 + int(group.removeprefix("x"))
    if index > MAX_TILE_INDEX:
        raise _Reject("index is not below 2**64")
    return index


def parse_tile_path(path: str) -> ParsedTilePath:
    """Parse a canonical ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` path.

    The path is relative to the log prefix, without a leading ``/``. Only the exact form that
    ``tile_path`` / ``entries_path`` produce is accepted, so every resource has one name: no
    leading zeros in ``<L>`` or ``<W>``, no leading ``x000`` group in ``<N>``, widths 1..255
    after ``.p/``, levels 0..63, indexes below 2**64. Raises ``TilePathError`` (a
    ``ValueError``) otherwise.
    """
    try:
        if len(path) > _MAX_PATH_LENGTH:
            raise _Reject(f"longer than {_MAX_PATH_LENGTH} characters")
        if not path.startswith("tile/"):
            hint = " (strip the log prefix and the leading '/')" if path.startswith("/") else ""
            raise _Reject(f"must start with 'tile/'{hint}")
        level_text, sep, rest = path[len("tile/") :].partition("/")
        if not sep:
            raise _Reject("no tile index after the level")
        level = _parse_level(level_text)
        index_text, partial, width_text = rest.partition(".p/")
        width = _parse_width(width_text) if partial else TILE_WIDTH
        return ParsedTilePath(level, _parse_index(index_text), width)
    except _Reject as e:
        shown = path if len(path) <= _MAX_PATH_LENGTH else path[:_MAX_PATH_LENGTH] + "..."
        raise TilePathError(f"bad tile path {shown!r}: {e}") from None


# -- widths and ranges ------------------------------------------------------------------------


def _check_size(tree_size: int) -> None:
    if tree_size < 0:
        raise ValueError(f"tree size must not be negative, got {tree_size}")


def partial_width(level: int, tree_size: int) -> int:
    """Width of the partial tile at ``level`` for a tree of ``tree_size`` leaves.

    ``floor(tree_size / 256**level) mod 256``; 0 means the level has no partial tile.
    """
    _check_level(level)
    _check_size(tree_size)
    return (tree_size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def tile_width(level: int, index: int, tree_size: int) -> int:
    """Width of tile ``index`` at ``level`` in a tree of ``tree_size`` leaves.

    ``TILE_WIDTH`` for a full tile, 1..255 for the rightmost partial one. Raises ``ValueError``
    if the tree has no such tile (it lies beyond the tree, or would be empty).
    """
    _check_level(level)
    _check_size(tree_size)
    if index < 0:
        raise ValueError(f"tile index must not be negative, got {index}")
    hashes = tree_size >> (TILE_HEIGHT * level)
    full, rest = divmod(hashes, TILE_WIDTH)
    if index < full:
        return TILE_WIDTH
    if index == full and rest:
        return rest
    raise ValueError(
        f"a tree of size {tree_size} has no tile {index} at level {level} "
        f"({full} full tile(s), partial width {rest})"
    )


def tiles_for_range(start: int, end: int, tree_size: int) -> list[TileSpan]:
    """The entry bundles (equally: level-0 tiles) that hold leaves ``[start, end)``.

    Widths are those of the tree of ``tree_size`` leaves: full bundles for complete groups of
    256, the partial width for the last incomplete group. Needs
    ``0 <= start <= end <= tree_size``; an empty range needs no bundles.
    """
    _check_size(tree_size)
    if not 0 <= start <= end <= tree_size:
        raise ValueError(f"leaf range [{start}, {end}) is not within a tree of size {tree_size}")
    spans: list[TileSpan] = []
    if start == end:
        return spans
    for index in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
        base = index * TILE_WIDTH
        first = max(start, base) - base
        last = min(end, base + TILE_WIDTH) - base
        spans.append(TileSpan(index, tile_width(0, index, tree_size), first, last - first))
    return spans


def node_to_tile(level: int, index: int) -> TileAddress:
    """The tile that holds tree node ``(level, index)`` (tessera ``NodeCoordsToTileAddress``).

    Node ``(level, index)`` is the perfect subtree over leaves ``[index * 2**level,
    (index + 1) * 2**level)``. It sits in tile level ``level // 8``, row ``level % 8`` of the
    tile, and that row has ``2**(8 - level % 8)`` nodes per full tile.
    """
    if level < 0 or index < 0:
        raise ValueError(f"node coordinates must not be negative, got ({level}, {index})")
    row_width = 1 << (TILE_HEIGHT - level % TILE_HEIGHT)
    tile_index, position = divmod(index, row_width)
    return TileAddress(level // TILE_HEIGHT, tile_index, position)


# -- contents ---------------------------------------------------------------------------------


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Serialise entries as ``repeat { uint16 big-endian length || entry }``.

    Raises ``MalformedInputError`` for an entry over 65535 bytes or more than 256 entries.
    """
    if len(entries) > TILE_WIDTH:
        raise MalformedInputError(
            f"entry bundle: {len(entries)} entries, at most {TILE_WIDTH} fit in a bundle"
        )
    parts: list[bytes] = []
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise MalformedInputError(
                f"entry bundle: entry {i} is {len(entry)} bytes, "
                f"the uint16 length prefix allows at most {MAX_ENTRY_SIZE}"
            )
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(bytes(entry))
    return b"".join(parts)


def decode_entry_bundle(data: BytesLike, expected: int | None = None) -> list[bytes]:
    """Split an entry bundle into its entries, strictly.

    Raises ``MalformedInputError`` if a length prefix or an entry is cut short, if there are
    more than 256 entries, or (when ``expected`` is given) if the bundle does not hold exactly
    ``expected`` entries, including bytes left over after the expected last entry.
    """
    if expected is not None and not 0 <= expected <= TILE_WIDTH:
        raise ValueError(f"expected entry count must be in 0..{TILE_WIDTH}, got {expected}")
    entries: list[bytes] = []
    offset, total = 0, len(data)
    while offset < total:
        i = len(entries)
        left = total - offset
        if i == expected:
            raise MalformedInputError(
                f"entry bundle: {left} trailing byte(s) at offset {offset} "
                f"after the expected {expected} entries"
            )
        if i == TILE_WIDTH:
            raise MalformedInputError(
                f"entry bundle: more than {TILE_WIDTH} entries "
                f"({left} byte(s) left at offset {offset})"
            )
        if left < 2:
            raise MalformedInputError(
                f"entry bundle truncated: entry {i} at offset {offset} needs a 2-byte "
                f"length prefix, only {left} byte(s) left"
            )
        length = int.from_bytes(data[offset : offset + 2], "big")
        if left - 2 < length:
            raise MalformedInputError(
                f"entry bundle truncated: entry {i} at offset {offset} declares {length} "
                f"byte(s), only {left - 2} left"
            )
        offset += 2
        entries.append(bytes(data[offset : offset + length]))
        offset += length
    if expected is not None and len(entries) != expected:
        raise MalformedInputError(f"entry bundle has {len(entries)} entries, expected {expected}")
    return entries


def split_tile(data: BytesLike, width: int) -> list[bytes]:
    """Split a hash tile of ``width`` hashes into 32-byte hashes.

    Raises ``MalformedInputError`` unless ``data`` is exactly ``width * 32`` bytes.
    """
    _check_width(width)
    if len(data) != width * HASH_SIZE:
        raise MalformedInputError(
            f"hash tile of width {width} must be {width * HASH_SIZE} bytes, got {len(data)}"
        )
    return [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
