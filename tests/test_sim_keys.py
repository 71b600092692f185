"""The simulator's pool keys: seeded, distinct within a pool, and RSA ones taken from the keys
the package ships (``tools.sim_rsa_keys`` writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from monitor.sim.keys import KEY_PATTERN, pool_key, rsa_key_count, rsa_pool_key
from tools import sim_rsa_keys

SHIPPED = Path(__file__).resolve().parent.parent / "monitor" / "sim" / "rsa_keys.pem"


def test_the_shipped_rsa_keys_are_as_many_distinct_2048_bit_keys_as_the_tool_writes() -> None:
    assert rsa_key_count() == sim_rsa_keys.COUNT
    keys = [rsa_pool_key(1, n) for n in range(rsa_key_count())]
    numbers = [k.public_key().public_numbers() for k in keys]
    assert {(n.e, k.key_size) for n, k in zip(numbers, keys, strict=True)} == {(65537, 2048)}
    assert len({n.n for n in numbers}) == sim_rsa_keys.COUNT


def test_a_seed_always_picks_the_same_rsa_keys_and_a_pool_never_one_twice() -> None:
    rsa_indexes = [n for n in range(64) if KEY_PATTERN[n % len(KEY_PATTERN)] == "rsa-2048"]
    for seed in (1, 424242):
        pool = [pool_key(seed, n).fingerprint for n in rsa_indexes]
        assert pool == [pool_key(seed, n).fingerprint for n in rsa_indexes]
        assert len(set(pool)) == len(rsa_indexes)
    firsts = {pool_key(seed, 7).fingerprint for seed in range(40)}
    assert len(firsts) > 8, "the seed should pick where a pool's RSA keys start"


def test_a_pool_cannot_hold_more_rsa_keys_than_ship() -> None:
    last = rsa_key_count() * len(KEY_PATTERN) - 1
    assert pool_key(3, last).algorithm == "rsa-2048"
    with pytest.raises(ValueError, match=f"ships {rsa_key_count()} RSA keys"):
        pool_key(3, last + len(KEY_PATTERN))


def test_the_tool_writes_fresh_private_keys() -> None:
    text = sim_rsa_keys.render(2)
    assert text.startswith(sim_rsa_keys.HEADER)
    assert SHIPPED.read_text(encoding="ascii").startswith(sim_rsa_keys.HEADER)
    blocks = text.split("-----END PRIVATE KEY-----\n")[:-1]
    keys = [
        serialization.load_pem_private_key((b + "-----END PRIVATE KEY-----\n").encode(), None)
        for b in blocks
    ]
    assert len(keys) == 2
    assert all(isinstance(k, rsa.RSAPrivateKey) and k.key_size == 2048 for k in keys)
    assert keys[0].public_key() != keys[1].public_key()
    assert sim_rsa_keys.main([]) == 2
