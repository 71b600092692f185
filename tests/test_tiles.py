"""monitor.tlog.tiles: C2SP tlog-tiles paths, widths, ranges, entry bundles and hash tiles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import MalformedInputError
from monitor.tlog.tiles import (
    ENTRIES,
    HASH_SIZE,
    MAX_ENTRY_SIZE,
    MAX_TILE_INDEX,
    TILE_WIDTH,
    ParsedTilePath,
    TileAddress,
    TilePathError,
    TileSpan,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    entries_path,
    node_to_tile,
    parse_tile_path,
    partial_width,
    split_tile,
    tile_path,
    tile_width,
    tiles_for_range,
)

PROPERTY = settings(max_examples=300, deadline=None)


def test_constants() -> None:
    assert TILE_WIDTH == 256
    assert HASH_SIZE == 32


# -- index encoding and paths -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "000"),
        (1, "001"),
        (67, "067"),
        (999, "999"),
        (1000, "x001/000"),
        (1001, "x001/001"),
        (999_999, "x999/999"),
        (1_000_000, "x001/x000/000"),
        (1_234_067, "x001/x234/067"),  # the spec's example
        (MAX_TILE_INDEX, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_encode_index(n: int, encoded: str) -> None:
    assert encode_index(n) == encoded
    assert parse_tile_path(f"tile/0/{encoded}") == (0, n, TILE_WIDTH)


def test_encode_index_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        encode_index(-1)


def test_paths() -> None:
    assert tile_path(0, 1_234_067) == "tile/0/x001/x234/067"
    assert tile_path(0, 1_234_067, 8) == "tile/0/x001/x234/067.p/8"
    assert tile_path(3, 0, 1) == "tile/3/000.p/1"
    assert tile_path(63, 5, 255) == "tile/63/005.p/255"
    assert tile_path(1, 2, TILE_WIDTH) == "tile/1/002"
    assert entries_path(0) == "tile/entries/000"
    assert entries_path(1_234_067, 112) == "tile/entries/x001/x234/067.p/112"


@pytest.mark.parametrize(
    ("level", "index", "width", "message"),
    [
        (-1, 0, 256, "level"),
        (64, 0, 256, "level"),
        (0, -1, 256, "index"),
        (0, MAX_TILE_INDEX + 1, 256, "index"),
        (0, 0, 0, "width"),  # tessera's "0 = full" is not accepted: it would hide bugs
        (0, 0, 257, "width"),
        (0, 0, -3, "width"),
    ],
)
def test_tile_path_rejects(level: int, index: int, width: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tile_path(level, index, width)
    if message != "level":
        with pytest.raises(ValueError, match=message):
            entries_path(index, width)


levels = st.one_of(st.integers(min_value=0, max_value=63), st.just(ENTRIES))
indexes = st.one_of(
    st.integers(min_value=0, max_value=MAX_TILE_INDEX),
    st.integers(min_value=0, max_value=10**7),
    st.sampled_from([0, 999, 1000, 10**6 - 1, 10**6, MAX_TILE_INDEX]),
)
widths = st.integers(min_value=1, max_value=TILE_WIDTH)


@PROPERTY
@given(level=levels, index=indexes, width=widths)
def test_path_round_trip(level: int | str, index: int, width: int) -> None:
    path = entries_path(index, width) if level == ENTRIES else tile_path(int(level), index, width)
    parsed = parse_tile_path(path)
    assert parsed == (level, index, width)
    assert parsed.is_entries == (level == ENTRIES)
    assert parsed.is_partial == (width < TILE_WIDTH)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "Tile/0/000",
        "tile/0/1",
        "tile/0/01",
        "tile/0/0001",
        "tile/0/00a",
        "tile/0/-01",
        "tile/0/+01",
        "tile/0/ 01",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/100/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile//000",
        "tile/0//000",
        "tile/entry/000",
        "tile/Entries/000",
        "tile/entries/",
        "tile/0/x000/001",  # non-canonical: 1 is "001"
        "tile/0/x000/x001/000",
        "tile/0/x1/000",
        "tile/0/x0001/000",
        "tile/0/X001/000",
        "tile/0/001/000",  # an inner group without "x"
        "tile/0/x001/x002",  # a last group with "x"
        "tile/0/x001",
        "tile/0/x001/",
        "tile/0/x001/./000",
        "tile/0/x001/../000",
        "tile/0/000/",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/00",
        "tile/0/000.p/08",
        "tile/0/000.p/256",
        "tile/0/000.p/1000",
        "tile/0/000.p/+8",
        "tile/0/000.p/ 8",
        "tile/0/000.p/8/",
        "tile/0/000.p/8.p/9",
        "tile/0/000.P/8",
        "tile/0/000.q/8",
        "tile/0/x001.p/8/000",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits: str.isdigit() says yes
        "tile/\u0661/000",
        "tile/0/000.p/\u0668",
        "tile/0/000\n",
        "tile/0\n/000",
        "tile/0/000.p/8\n",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64
        "tile/0/" + "x999/" * 40 + "999",  # absurdly long
        "tile/0/000?x=1",
        "tile/0/000%2F",
    ],
)
def test_parse_rejects(path: str) -> None:
    with pytest.raises(TilePathError, match="bad tile path"):
        parse_tile_path(path)


def test_parse_errors_are_value_errors_and_say_why() -> None:
    assert issubclass(TilePathError, ValueError)
    with pytest.raises(ValueError, match=r"leading 'x000'"):
        parse_tile_path("tile/0/x000/001")
    with pytest.raises(ValueError, match=r"partial width 256 is not in 1\.\.255"):
        parse_tile_path("tile/0/000.p/256")
    with pytest.raises(ValueError, match="level 64 is above 63"):
        parse_tile_path("tile/64/000")
    with pytest.raises(ValueError, match="strip the log prefix"):
        parse_tile_path("/tile/0/000")


def test_parse_examples() -> None:
    assert parse_tile_path("tile/0/x001/x234/067") == ParsedTilePath(0, 1_234_067, 256)
    assert parse_tile_path("tile/0/x001/x234/067.p/8") == (0, 1_234_067, 8)
    assert parse_tile_path("tile/entries/x001/x234/067.p/255") == (ENTRIES, 1_234_067, 255)
    assert parse_tile_path("tile/63/000.p/1") == (63, 0, 1)
    assert parse_tile_path("tile/10/999") == (10, 999, 256)
    level, index, width = parse_tile_path("tile/entries/000")
    assert (level, index, width) == ("entries", 0, 256)


_path_alphabet = st.sampled_from([*"tile/entries0123456789x.p/", "/", "x", ".p/", "0"])


@PROPERTY
@given(text=st.lists(_path_alphabet, max_size=40).map("".join))
def test_parse_accepts_only_canonical_paths(text: str) -> None:
    """Any string either fails with TilePathError or is exactly what tile_path would print."""
    for candidate in (text, "tile/" + text, "tile/0/" + text, "tile/entries/" + text):
        try:
            level, index, width = parse_tile_path(candidate)
        except TilePathError:
            continue
        if level == ENTRIES:
            assert entries_path(index, width) == candidate
        else:
            assert isinstance(level, int)
            assert tile_path(level, index, width) == candidate


@PROPERTY
@given(
    level=levels,
    index=indexes,
    width=widths,
    position=st.integers(min_value=0, max_value=80),
    junk=st.text(min_size=1, max_size=3),
)
def test_parse_rejects_mutations(
    level: int | str, index: int, width: int, position: int, junk: str
) -> None:
    path = entries_path(index, width) if level == ENTRIES else tile_path(int(level), index, width)
    at = position % (len(path) + 1)
    mutated = path[:at] + junk + path[at:]
    try:
        parsed = parse_tile_path(mutated)
    except TilePathError:
        return
    # A mutation can only be accepted if it spells another canonical path.
    again = (
        entries_path(parsed.index, parsed.width)
        if parsed.level == ENTRIES
        else tile_path(int(parsed.level), parsed.index, parsed.width)
    )
    assert again == mutated


# -- widths and ranges ------------------------------------------------------------------------


def test_spec_example_70000() -> None:
    """tlog-tiles: a tree of size 70,000 has 273 full level-0 tiles, a level-0 partial of
    width 112, one full level-1 tile, a level-1 partial of width 17, a level-2 partial of 1."""
    size = 70_000
    assert [partial_width(level, size) for level in range(4)] == [112, 17, 1, 0]
    assert all(tile_width(0, i, size) == 256 for i in range(273))
    assert tile_width(0, 273, size) == 112
    assert tile_width(1, 0, size) == 256
    assert tile_width(1, 1, size) == 17
    assert tile_width(2, 0, size) == 1
    for level, index in [(0, 274), (1, 2), (2, 1), (3, 0), (63, 0)]:
        with pytest.raises(ValueError, match="has no tile"):
            tile_width(level, index, size)


def test_spec_example_256() -> None:
    """A tree of size 256 is a full level-0 tile and a level-1 partial tile of width 1."""
    assert partial_width(0, 256) == 0
    assert partial_width(1, 256) == 1
    assert tile_width(0, 0, 256) == 256
    assert tile_width(1, 0, 256) == 1
    with pytest.raises(ValueError, match="has no tile"):
        tile_width(0, 1, 256)


def test_width_argument_errors() -> None:
    with pytest.raises(ValueError, match="level"):
        partial_width(64, 1)
    with pytest.raises(ValueError, match="negative"):
        partial_width(0, -1)
    with pytest.raises(ValueError, match="negative"):
        tile_width(0, -1, 10)
    with pytest.raises(ValueError, match="has no tile"):
        tile_width(0, 0, 0)


@PROPERTY
@given(level=st.integers(min_value=0, max_value=4), size=st.integers(min_value=0, max_value=2**40))
def test_partial_width_formula(level: int, size: int) -> None:
    assert partial_width(level, size) == (size // 256**level) % 256
    full = size // 256 ** (level + 1)
    if full:
        assert tile_width(level, full - 1, size) == 256
    if partial_width(level, size):
        assert tile_width(level, full, size) == partial_width(level, size)


def test_tiles_for_range_examples() -> None:
    assert tiles_for_range(0, 0, 0) == []
    assert tiles_for_range(5, 5, 100) == []
    assert tiles_for_range(0, 10, 10) == [TileSpan(0, 10, 0, 10)]
    # Widths come from the tree, not the range: bundle 0 is full in a tree of 300.
    assert tiles_for_range(0, 10, 300) == [TileSpan(0, 256, 0, 10)]
    spans = tiles_for_range(250, 600, 700)
    assert spans == [
        TileSpan(0, 256, 250, 6),
        TileSpan(1, 256, 0, 256),
        TileSpan(2, 188, 0, 88),
    ]
    assert [s.entries_path for s in spans] == [
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/188",
    ]
    assert spans[2].tile_path == "tile/0/002.p/188"
    assert spans[2].is_partial
    assert not spans[0].is_partial
    assert (spans[0].start, spans[0].end, spans[2].start, spans[2].end) == (250, 256, 512, 600)
    big = tiles_for_range(1_234_067 * 256 + 3, 1_234_068 * 256, 10**9)
    assert big[0].entries_path == "tile/entries/x001/x234/067"


@pytest.mark.parametrize(("start", "end", "size"), [(-1, 2, 5), (3, 2, 5), (0, 6, 5), (0, 0, -1)])
def test_tiles_for_range_rejects(start: int, end: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"tree size|not within"):
        tiles_for_range(start, end, size)


@PROPERTY
@given(data=st.data(), size=st.integers(min_value=0, max_value=5000))
def test_tiles_for_range_covers_exactly(data: st.DataObject, size: int) -> None:
    start = data.draw(st.integers(min_value=0, max_value=size))
    end = data.draw(st.integers(min_value=start, max_value=size))
    spans = tiles_for_range(start, end, size)
    covered = [i for s in spans for i in range(s.start, s.end)]
    assert covered == list(range(start, end))
    for s in spans:
        assert s.count > 0
        assert 0 <= s.first < s.first + s.count <= s.width
        assert s.width == tile_width(0, s.index, size)
    assert [s.index for s in spans] == sorted({i // 256 for i in range(start, end)})


# -- node coordinates -------------------------------------------------------------------------


def _brute_node_to_tile(level: int, index: int) -> tuple[int, int, int]:
    """Search the tile whose leaf range holds the node's, and the node's place in that row."""
    tile_level = level // 8
    leaves_per_tile = 256 ** (tile_level + 1)
    first_leaf, last_leaf = index * 2**level, (index + 1) * 2**level - 1
    tile_index = 0
    while not (
        tile_index * leaves_per_tile <= first_leaf
        and last_leaf < (tile_index + 1) * leaves_per_tile
    ):
        tile_index += 1
    # The row of this node inside the tile: the nodes at `level` that lie in the tile, in order.
    row = range(tile_index * leaves_per_tile >> level, (tile_index + 1) * leaves_per_tile >> level)
    return tile_level, tile_index, row.index(index)


@pytest.mark.parametrize("level", range(20))
def test_node_to_tile_brute_force(level: int) -> None:
    row_width = 1 << (8 - level % 8)
    for index in [*range(3 * row_width + 2), 10 * row_width - 1, 10 * row_width]:
        got = node_to_tile(level, index)
        assert got == _brute_node_to_tile(level, index), (level, index)
        assert isinstance(got, TileAddress)
        assert got.position < row_width


def test_node_to_tile_examples() -> None:
    assert node_to_tile(0, 0) == TileAddress(0, 0, 0)
    assert node_to_tile(0, 1_234_067) == (0, 1_234_067 // 256, 1_234_067 % 256)
    assert node_to_tile(3, 33) == (0, 1, 1)  # row 3 of a tile has 32 nodes
    assert node_to_tile(7, 5) == (0, 2, 1)  # row 7 has 2
    assert node_to_tile(8, 5) == (1, 0, 5)  # level 8 is the bottom row of tile level 1
    assert node_to_tile(16, 256) == (2, 1, 0)
    with pytest.raises(ValueError, match="negative"):
        node_to_tile(-1, 0)
    with pytest.raises(ValueError, match="negative"):
        node_to_tile(0, -1)


# -- entry bundles ----------------------------------------------------------------------------


def test_entry_bundle_layout() -> None:
    assert encode_entry_bundle([]) == b""
    assert encode_entry_bundle([b"abc", b"", b"\x00" * 300]) == (
        b"\x00\x03abc" + b"\x00\x00" + b"\x01\x2c" + b"\x00" * 300
    )
    assert decode_entry_bundle(b"\x00\x03abc\x00\x00") == [b"abc", b""]
    assert decode_entry_bundle(b"") == []
    assert decode_entry_bundle(b"", expected=0) == []


def test_entry_bundle_limits() -> None:
    biggest = b"\xff" * MAX_ENTRY_SIZE
    data = encode_entry_bundle([biggest])
    assert data[:2] == b"\xff\xff"
    assert decode_entry_bundle(data, expected=1) == [biggest]
    full = [i.to_bytes(2, "big") for i in range(256)]
    assert decode_entry_bundle(encode_entry_bundle(full), expected=256) == full
    with pytest.raises(MalformedInputError, match="entry 1 is 65536 bytes"):
        encode_entry_bundle([b"", b"\x00" * (MAX_ENTRY_SIZE + 1)])
    with pytest.raises(MalformedInputError, match="257 entries, at most 256"):
        encode_entry_bundle([b""] * 257)


@PROPERTY
@given(entries=st.lists(st.binary(max_size=300), max_size=256))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, expected=len(entries)) == entries
    assert decode_entry_bundle(bytearray(data)) == entries


@PROPERTY
@given(data=st.binary(max_size=600))
def test_entry_bundle_decode_is_strict(data: bytes) -> None:
    """Random bytes either fail cleanly or are exactly the encoding of what they decode to."""
    try:
        entries = decode_entry_bundle(data)
    except MalformedInputError:
        return
    assert encode_entry_bundle(entries) == data


GOOD = encode_entry_bundle([b"one", b"two"])


@pytest.mark.parametrize(
    ("data", "expected", "message"),
    [
        (b"\x00", None, r"truncated: entry 0 at offset 0 needs a 2-byte length prefix, only 1"),
        (b"\x00\x05abc", None, r"truncated: entry 0 at offset 0 declares 5 byte\(s\), only 3"),
        (b"\xff\xff", None, r"declares 65535 byte\(s\), only 0 left"),
        (GOOD + b"\x00", None, r"truncated: entry 2 at offset 10 needs a 2-byte length"),
        (GOOD + b"\x00\x02z", None, r"entry 2 at offset 10 declares 2 byte\(s\), only 1"),
        (GOOD + b"\x00", 3, r"entry 2 at offset 10 needs a 2-byte length"),
        (GOOD + b"\x00", 2, r"1 trailing byte\(s\) at offset 10 after the expected 2 entries"),
        (GOOD + b"\x00\x01z", 2, r"3 trailing byte\(s\) at offset 10 after the expected 2"),
        (GOOD, 3, r"entry bundle has 2 entries, expected 3"),
        (GOOD, 1, r"5 trailing byte\(s\) at offset 5 after the expected 1 entries"),
        (GOOD, 0, r"10 trailing byte\(s\) at offset 0 after the expected 0 entries"),
        (b"", 1, r"entry bundle has 0 entries, expected 1"),
        (b"\x00\x00" * 257, None, r"more than 256 entries \(2 byte\(s\) left at offset 512\)"),
    ],
)
def test_entry_bundle_malformed(data: bytes, expected: int | None, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        decode_entry_bundle(data, expected=expected)


@pytest.mark.parametrize("expected", [-1, 257])
def test_entry_bundle_expected_out_of_range(expected: int) -> None:
    with pytest.raises(ValueError, match="expected entry count"):
        decode_entry_bundle(GOOD, expected=expected)


# -- hash tiles -------------------------------------------------------------------------------


def test_split_tile() -> None:
    hashes = [bytes([i]) * 32 for i in range(256)]
    assert split_tile(b"".join(hashes), 256) == hashes
    assert split_tile(b"".join(hashes[:3]), 3) == hashes[:3]
    assert split_tile(bytearray(b"".join(hashes[:1])), 1) == hashes[:1]
    with pytest.raises(MalformedInputError, match="width 3 must be 96 bytes, got 95"):
        split_tile(b"".join(hashes[:3])[:-1], 3)
    with pytest.raises(MalformedInputError, match="width 256 must be 8192 bytes, got 8224"):
        split_tile(b"".join(hashes) + hashes[0], 256)
    with pytest.raises(MalformedInputError, match="got 0"):
        split_tile(b"", 1)
    for width in (0, 257):
        with pytest.raises(ValueError, match="width"):
            split_tile(b"", width)
