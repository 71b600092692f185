"""Real signatures for the simulator's entries, made as the clients that submit them make them
and as Rekor checks them before it logs an entry (REKOR-FORMATS.md sections 4 and 6.4).

* hashedrekord (v1 0.0.1, v2 0.0.2): a signature over the artifact digest, ECDSA or RSA
  PKCS#1 v1.5 over the prehashed digest of the body's hash algorithm (``sign_digest``);
* DSSE (v1 dsse 0.0.1, intoto 0.0.2, v2 dsse 0.0.2) and rekord x509: a signature over the
  message itself, the DSSE PAE or the artifact bytes: ECDSA and RSA with SHA-256 (Rekor
  loads these verifiers with SHA-256 whatever the curve), pure Ed25519 (``sign_message``);
* rekord ssh: an SSHSIG (``ssh-keygen -Y sign -n file``, SHA-512 of the message);
* rekord minisign: a prehashed minisign signature (BLAKE2b-512 of the message) with its
  trusted comment signed too.

Every signature is deterministic (RFC 6979 ECDSA, Ed25519, PKCS#1 v1.5), so an entry rebuilt
from its index always has the same bytes, and the same leaf hash.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from monitor.core.encoding import b64encode
from monitor.sim.keys import SigningKey

SSH_NAMESPACE = "file"  # what Rekor's ssh type verifies an SSHSIG under
SSH_HASH = "sha512"  # ssh-keygen's default

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_digest(key: SigningKey, digest: bytes, algorithm: str = "sha256") -> bytes:
    """A signature over a digest made with ``algorithm`` (hashedrekord)."""
    prehashed = utils.Prehashed(_HASHES[algorithm]())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(prehashed, deterministic_signing=True))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    raise ValueError("pure Ed25519 signs a message, not a digest")


def sign_message(key: SigningKey, message: bytes) -> bytes:
    """A signature over ``message`` (a DSSE PAE, or the artifact of a rekord x509 entry)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message)


# --- SSHSIG (PROTOCOL.sshsig) -------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _mpint(n: int) -> bytes:
    """A positive SSH mpint: big-endian, a zero byte first when the top bit is set."""
    return _string(n.to_bytes((n.bit_length() + 8) // 8, "big"))


def ssh_signature(key: SigningKey, message: bytes) -> bytes:
    """The ``signature`` field of an SSHSIG over ``message``: string(type) || string(blob)."""
    signed = (
        b"SSHSIG"
        + _string(SSH_NAMESPACE.encode())
        + _string(b"")
        + _string(SSH_HASH.encode())
        + _string(hashlib.sha512(message).digest())
    )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _string(b"ssh-ed25519") + _string(key.sign(signed))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("SSH signatures here are Ed25519 or ECDSA")
    bits = key.curve.key_size
    hash_algorithm = hashes.SHA256() if bits == 256 else hashes.SHA384()  # RFC 5656
    der = key.sign(signed, ec.ECDSA(hash_algorithm, deterministic_signing=True))
    r, s = utils.decode_dss_signature(der)
    return _string(f"ecdsa-sha2-nistp{bits}".encode()) + _string(_mpint(r) + _mpint(s))


def sshsig_armor(public_blob: bytes, signature: bytes) -> bytes:
    """The armored SSHSIG file ``ssh-keygen -Y sign`` writes, around ``ssh_signature``."""
    blob = (
        b"SSHSIG"
        + (1).to_bytes(4, "big")
        + _string(public_blob)
        + _string(SSH_NAMESPACE.encode())
        + _string(b"")
        + _string(SSH_HASH.encode())
        + _string(signature)
    )
    text = b64encode(blob)
    lines = "\n".join(text[i : i + 70] for i in range(0, len(text), 70))
    return f"-----BEGIN SSH SIGNATURE-----\n{lines}\n-----END SSH SIGNATURE-----\n".encode()


# --- minisign -----------------------------------------------------------------------------------


def minisign_signature(key: SigningKey, message: bytes, trusted_comment: str) -> bytes:
    """A prehashed minisign signature of ``message`` and the global signature over it and the
    trusted comment: 128 bytes, both Ed25519."""
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("minisign keys are Ed25519")
    signature = key.sign(hashlib.blake2b(message, digest_size=64).digest())
    return signature + key.sign(signature + trusted_comment.encode())


def minisig_file(key_id: bytes, signatures: bytes, trusted_comment: str) -> bytes:
    """The ``.minisig`` file for ``minisign_signature``'s 128 bytes ("ED": prehashed)."""
    return (
        "untrusted comment: signature from minisign secret key\n"
        f"{b64encode(b'ED' + key_id + signatures[:64])}\n"
        f"trusted comment: {trusted_comment}\n"
        f"{b64encode(signatures[64:])}\n"
    ).encode()
