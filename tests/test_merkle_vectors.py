"""Run monitor.tlog.merkle against every inclusion and consistency test vector in the fixtures.

The vectors (tests/fixtures/merkle-vectors) follow the transparency-dev layout: the happy paths
are proofs over the classic certificate-transparency 8-leaf test tree, and every other file is
a mutation of one (a flipped field, a wrong size, a truncated proof...) that must be rejected.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import ProofError
from monitor.tlog.merkle import verify_consistency, verify_inclusion
from tests.merkle_reference import ReferenceTree, ref_leaf_hash

VECTOR_DIR = Path(__file__).parent / "fixtures" / "merkle-vectors"
EXPECTED_VECTOR_FILES = 196

# The leaves of the certificate-transparency test tree that the happy-path vectors are built on.
CT_TEST_LEAVES: tuple[bytes, ...] = (
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
)
# Its published roots for sizes 1..8 (certificate-transparency merkle_tree_test.cc).
CT_TEST_ROOTS: tuple[str, ...] = (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)


@dataclass(frozen=True)
class InclusionVector:
    leaf_idx: int
    tree_size: int
    root: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    desc: str
    want_err: bool


@dataclass(frozen=True)
class ConsistencyVector:
    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: tuple[bytes, ...]
    desc: str
    want_err: bool


def _b64(value: str) -> bytes:
    # Decoded as-is: empty strings and hashes that are not 32 bytes are part of the vectors.
    return base64.b64decode(value, validate=True)


def _proof(raw: list[str] | None) -> tuple[bytes, ...]:
    # Go's encoding/json writes a nil slice as null.
    return tuple(_b64(h) for h in raw or ())


def _load(path: Path) -> InclusionVector | ConsistencyVector:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    kind = path.relative_to(VECTOR_DIR).parts[0]
    if kind == "inclusion":
        return InclusionVector(
            leaf_idx=int(data["leafIdx"]),
            tree_size=int(data["treeSize"]),
            root=_b64(data["root"]),
            leaf_hash=_b64(data["leafHash"]),
            proof=_proof(data["proof"]),
            desc=str(data["desc"]),
            want_err=bool(data["wantErr"]),
        )
    if kind == "consistency":
        return ConsistencyVector(
            size1=int(data["size1"]),
            size2=int(data["size2"]),
            root1=_b64(data["root1"]),
            root2=_b64(data["root2"]),
            proof=_proof(data["proof"]),
            desc=str(data["desc"]),
            want_err=bool(data["wantErr"]),
        )
    raise AssertionError(f"vector {path} is neither under inclusion/ nor consistency/")


VECTOR_FILES: list[Path] = sorted(VECTOR_DIR.rglob("*.json"))
VECTOR_IDS: list[str] = [p.relative_to(VECTOR_DIR).as_posix() for p in VECTOR_FILES]


def _run(vector: InclusionVector | ConsistencyVector) -> None:
    if isinstance(vector, InclusionVector):
        verify_inclusion(
            vector.leaf_idx, vector.tree_size, vector.leaf_hash, vector.proof, vector.root
        )
    else:
        verify_consistency(vector.size1, vector.size2, vector.proof, vector.root1, vector.root2)


def test_vector_count() -> None:
    """The suite must not shrink silently: every vector file is collected, and parses."""
    assert len(VECTOR_FILES) == EXPECTED_VECTOR_FILES
    kinds = sorted({p.relative_to(VECTOR_DIR).parts[0] for p in VECTOR_FILES})
    assert kinds == ["consistency", "inclusion"]
    vectors = [_load(p) for p in VECTOR_FILES]
    assert sum(isinstance(v, InclusionVector) for v in vectors) == 98
    assert sum(isinstance(v, ConsistencyVector) for v in vectors) == 98
    assert len(set(VECTOR_IDS)) == EXPECTED_VECTOR_FILES


@pytest.mark.parametrize("path", VECTOR_FILES, ids=VECTOR_IDS)
def test_vector(path: Path) -> None:
    vector = _load(path)
    if vector.want_err:
        with pytest.raises(ProofError) as excinfo:
            _run(vector)
        expected = "inclusion-proof" if isinstance(vector, InclusionVector) else "consistency-proof"
        assert excinfo.value.check == expected
    else:
        _run(vector)


# -- the oracle itself, checked against the same external vectors -----------------------------

HAPPY_PATHS = [
    p
    for p in VECTOR_FILES
    if p.name == "happy-path.json" and p.relative_to(VECTOR_DIR).parts[1].isdigit()
]


def _ct_tree() -> ReferenceTree:
    return ReferenceTree(ref_leaf_hash(d) for d in CT_TEST_LEAVES)


def test_reference_reproduces_ct_roots() -> None:
    tree = _ct_tree()
    assert [tree.root(n).hex() for n in range(1, 9)] == list(CT_TEST_ROOTS)


def test_happy_path_vectors_are_found() -> None:
    assert len(HAPPY_PATHS) == 10


@pytest.mark.parametrize(
    "path", HAPPY_PATHS, ids=[p.relative_to(VECTOR_DIR).as_posix() for p in HAPPY_PATHS]
)
def test_reference_reproduces_happy_path(path: Path) -> None:
    """The reference tree yields byte-for-byte the proofs of the published happy paths."""
    vector = _load(path)
    assert not vector.want_err
    tree = _ct_tree()
    if isinstance(vector, InclusionVector):
        assert tree.leaf(vector.leaf_idx) == vector.leaf_hash
        assert tree.root(vector.tree_size) == vector.root
        assert tuple(tree.inclusion_proof(vector.leaf_idx, vector.tree_size)) == vector.proof
    else:
        assert tree.root(vector.size1) == vector.root1
        assert tree.root(vector.size2) == vector.root2
        assert tuple(tree.consistency_proof(vector.size1, vector.size2)) == vector.proof
