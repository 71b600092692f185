"""Self-managed signing keys for the simulator: the pool's bare keys and planted keys.

A bare key is a private key and its public key in every encoding an entry kind uses (PEM, DER
SubjectPublicKeyInfo, an OpenSSH line, a minisign ``.pub`` file). Pool keys are derived from
the seed, so one seed always gives the same keys: ECDSA from ``derive_ec_key``, Ed25519 from
``seeded_bytes``, RSA picked by the seed among keys shipped with the package
(``rsa_pool_key``). A planted key arrives as a private key PEM (``load_signing_key``): the
simulator signs with it, as a real signer would.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from monitor.core.encoding import b64encode
from monitor.sim.ca import derive_ec_key, seeded_bytes

SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

KEY_PATTERN = (
    "ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ecdsa-p384", "ed25519", "ed25519",
    "rsa-2048",
)  # fmt: skip
"""The algorithm of pool key ``n`` is ``KEY_PATTERN[n % 8]``."""


@dataclass(frozen=True)
class BareKey:
    """A self-managed key: the private key that signs, and the public key in every encoding."""

    algorithm: str  # ecdsa-p256, ecdsa-p384, ed25519, rsa-<bits>
    key: SigningKey = field(compare=False, repr=False)
    public_pem: bytes
    spki_der: bytes
    key_details: str  # Rekor v2 PublicKeyDetails
    ssh: str | None  # OpenSSH public key line (not for RSA keys)
    ssh_blob: bytes | None  # its decoded key blob, which an SSH signature names
    minisign: str | None  # minisign .pub file (Ed25519 keys)
    minisign_id: bytes | None  # the 8-byte minisign key ID
    label: str
    v1_key: str  # base64 of the PEM
    v2_raw: str  # base64 of the DER SubjectPublicKeyInfo
    v2_field: str = "publicKey"

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the DER SubjectPublicKeyInfo, as the monitor prints it."""
        return f"sha256:{hashlib.sha256(self.spki_der).hexdigest()}"

    @property
    def hashedrekord_ok(self) -> bool:
        """hashedrekord signs a digest: pure Ed25519 cannot (it needs the whole message)."""
        return self.algorithm != "ed25519"


def bare_key(key: SigningKey, label: str, minisign_id: bytes | None = None) -> BareKey:
    """Describe a private key's public half in all its encodings (minisign only for Ed25519)."""
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    minisign: str | None = None
    if isinstance(public, ec.EllipticCurvePublicKey):
        bits = public.curve.key_size
        if bits not in (256, 384):
            raise ValueError(f"unsupported curve {public.curve.name}: use P-256 or P-384")
        algorithm = f"ecdsa-p{bits}"
        details = f"PKIX_ECDSA_P{bits}_SHA_{bits}"
    elif isinstance(public, rsa.RSAPublicKey):
        algorithm = f"rsa-{public.key_size}"
        details = f"PKIX_RSA_PKCS1V15_{public.key_size}_SHA256"
    else:
        # Ed25519 signs messages, never a digest: it appears in DSSE (pure Ed25519 over the PAE)
        # and rekord, not in hashedrekord
        algorithm, details = "ed25519", "PKIX_ED25519"
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        minisign_id = minisign_id or hashlib.sha256(raw).digest()[:8]
        line = b64encode(b"Ed" + minisign_id + raw)
        minisign = (
            f"untrusted comment: minisign public key {minisign_id[::-1].hex().upper()}\n{line}\n"
        )
    ssh: str | None = None
    ssh_blob: bytes | None = None
    if not isinstance(public, rsa.RSAPublicKey):
        openssh = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        ssh = f"{openssh} {label.replace(' ', '-')}@sim.invalid"
        ssh_blob = base64.b64decode(openssh.split()[1])
    return BareKey(
        algorithm=algorithm,
        key=key,
        public_pem=pem,
        spki_der=spki,
        key_details=details,
        ssh=ssh,
        ssh_blob=ssh_blob,
        minisign=minisign,
        minisign_id=minisign_id if minisign else None,
        label=label,
        v1_key=b64encode(pem),
        v2_raw=b64encode(spki),
    )


def pool_key(seed: int, n: int) -> BareKey:
    """Pool key ``n``: its algorithm from ``KEY_PATTERN``, its material from the seed."""
    algorithm = KEY_PATTERN[n % len(KEY_PATTERN)]
    key: SigningKey
    if algorithm == "ecdsa-p256":
        key = derive_ec_key(seed, f"bare:{n}", ec.SECP256R1())
    elif algorithm == "ecdsa-p384":
        key = derive_ec_key(seed, f"bare:{n}", ec.SECP384R1())
    elif algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seeded_bytes(seed, f"bare:{n}"))
    else:
        key = rsa_pool_key(seed, _ordinal(n))
    return bare_key(key, f"key {n} {algorithm}", seeded_bytes(seed, f"minisign:{n}", 8))


def _ordinal(n: int) -> int:
    """How many pool keys before key ``n`` have its algorithm."""
    algorithm = KEY_PATTERN[n % len(KEY_PATTERN)]
    whole, rest = divmod(n, len(KEY_PATTERN))
    return whole * KEY_PATTERN.count(algorithm) + KEY_PATTERN[:rest].count(algorithm)


def load_signing_key(pem: bytes) -> SigningKey:
    """A planted key's private key, from its PEM (PKCS#8, unencrypted).

    Raises ``ValueError`` saying why a key cannot sign: a public key or certificate (the
    simulator signs each entry as a real signer would, so it needs the private key), an
    encrypted one, or an algorithm Rekor entries do not carry here.
    """
    text = pem.decode("ascii", "replace")
    if "PUBLIC KEY-----" in text or "CERTIFICATE-----" in text:
        raise ValueError(
            "key_pem is a public key: a plant needs the PRIVATE key (PKCS#8 PEM, unencrypted), "
            "because the simulator signs the entry with it, as a real signer would"
        )
    if "ENCRYPTED PRIVATE KEY-----" in text:
        raise ValueError("key_pem is encrypted: give the private key unencrypted (PKCS#8 PEM)")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"key_pem is not a private key PEM (PKCS#8, unencrypted): {e}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size not in (256, 384):
            raise ValueError(f"key_pem: unsupported curve {key.curve.name}: use P-256 or P-384")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise ValueError(f"key_pem: unsupported key type {type(key).__name__}")


# --- RSA keys ----------------------------------------------------------------------------------

# RSA keys cannot be derived from a seed with ``cryptography`` (it generates them from the
# system's randomness only), so a set generated once (``python -m tools.sim_rsa_keys``) ships
# with the package and each seed picks its RSA keys among them.
_RSA_KEYS = "rsa_keys.pem"
_PEM_END = "-----END PRIVATE KEY-----\n"


@lru_cache(maxsize=1)
def _rsa_pems() -> tuple[bytes, ...]:
    text = resources.files("monitor.sim").joinpath(_RSA_KEYS).read_text(encoding="ascii")
    body = text[text.index("-----BEGIN") :]  # after the comment saying what they are
    return tuple((block + _PEM_END).encode("ascii") for block in body.split(_PEM_END)[:-1])


def rsa_key_count() -> int:
    """How many RSA keys ship: one pool can hold at most that many."""
    return len(_rsa_pems())


@lru_cache(maxsize=64)
def rsa_pool_key(seed: int, ordinal: int) -> rsa.RSAPrivateKey:
    """The pool's RSA key number ``ordinal`` (0 for its first): shipped keys taken in turn from
    a place the seed picks, so one seed always has the same keys and no pool holds one twice."""
    pems = _rsa_pems()
    if not 0 <= ordinal < len(pems):
        raise ValueError(
            f"RSA key {ordinal}: the simulator ships {len(pems)} RSA keys "
            f"(at most {len(pems) * len(KEY_PATTERN)} bare keys in a pool)"
        )
    first = int.from_bytes(seeded_bytes(seed, "rsa"), "big") % len(pems)
    key = serialization.load_pem_private_key(pems[(first + ordinal) % len(pems)], password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{_RSA_KEYS} holds a {type(key).__name__}, not an RSA key")
    return key
