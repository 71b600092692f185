"""Rekor v1 entry kinds (``pkg/types/*``): every kind the public log accepts.

Bodies are the canonicalised entries: only read-only fields are present (no envelopes, no
payloads, no artifact contents). See REKOR-FORMATS.md §4.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader
from monitor.entries import der
from monitor.entries.common import EntryFields, hex_digest, signer_from_b64, signer_from_bytes
from monitor.entries.record import Digest, KeySigner, Signer

MAX_SIGNATURES = 64
_REKORD_FORMATS = {"x509", "pgp", "minisign", "ssh"}


def hashedrekord(spec: JsonReader) -> EntryFields:
    signer = signer_from_b64(spec.get("signature").get("publicKey").get("content"))
    return EntryFields(
        signers=(signer,), artifact_digests=(hex_digest(spec.get("data").get("hash")),)
    )


def rekord(spec: JsonReader) -> EntryFields:
    sig = spec.get("signature")
    fmt_r = sig.get("format")
    fmt = fmt_r.str()
    if fmt not in _REKORD_FORMATS:
        raise fmt_r.fail(f"unknown signature format {fmt[:20]!r}")
    signer = signer_from_b64(sig.get("publicKey").get("content"), fmt)
    data = spec.get("data")
    h = data.opt("hash")
    return EntryFields(signers=(signer,), artifact_digests=(hex_digest(h),) if h else ())


def _limited(items: list[JsonReader], where: JsonReader) -> list[JsonReader]:
    if not items:
        raise where.fail("no signatures")
    if len(items) > MAX_SIGNATURES:
        raise where.fail(f"more than {MAX_SIGNATURES} signatures")
    return items


def dsse(spec: JsonReader) -> EntryFields:
    sigs = spec.get("signatures")
    signers = tuple(signer_from_b64(s.get("verifier")) for s in _limited(sigs.items(), sigs))
    return EntryFields(
        signers=signers,
        payload_hash=hex_digest(spec.get("payloadHash")),
        envelope_hash=hex_digest(spec.get("envelopeHash")),
    )


def intoto_001(spec: JsonReader) -> EntryFields:
    content = spec.get("content")
    ph = content.opt("payloadHash")  # absent on very old entries
    return EntryFields(
        signers=(signer_from_b64(spec.get("publicKey")),),
        payload_hash=hex_digest(ph) if ph else None,
        envelope_hash=hex_digest(content.get("hash")),
    )


def intoto_002(spec: JsonReader) -> EntryFields:
    content = spec.get("content")
    env = content.get("envelope")
    sigs = env.get("signatures")
    signers = tuple(signer_from_b64(s.get("publicKey")) for s in _limited(sigs.items(), sigs))
    pt = env.opt("payloadType")
    ph = content.opt("payloadHash")
    return EntryFields(
        signers=signers,
        payload_hash=hex_digest(ph) if ph else None,
        envelope_hash=hex_digest(content.get("hash")),
        payload_type=pt.str() if pt else None,
    )


def jar(spec: JsonReader) -> EntryFields:
    signer = signer_from_b64(spec.get("signature").get("publicKey").get("content"))
    return EntryFields(
        signers=(signer,), artifact_digests=(hex_digest(spec.get("archive").get("hash")),)
    )


def _package_kind(container: str, key_format: str) -> Callable[[JsonReader], EntryFields]:
    """rpm, alpine and helm: a package hash and a public key beside it."""

    def parse(spec: JsonReader) -> EntryFields:
        signer = signer_from_b64(spec.get("publicKey").get("content"), key_format)
        digest = hex_digest(spec.get(container).get("hash"))
        return EntryFields(signers=(signer,), artifact_digests=(digest,))

    return parse


def cose(spec: JsonReader) -> EntryFields:
    data = spec.get("data")
    eh = data.opt("envelopeHash")
    return EntryFields(
        signers=(signer_from_b64(spec.get("publicKey")),),
        payload_hash=hex_digest(data.get("payloadHash")),
        envelope_hash=hex_digest(eh) if eh else None,
    )


def tuf(spec: JsonReader) -> EntryFields:
    """TUF metadata signed by the keys of a TUF root: the signers are the root's keys."""
    root = spec.get("root").get("content")
    keys = root.get("signed").get("keys")
    signers: list[Signer] = []
    for key_id, key in list(keys.obj().items())[:MAX_SIGNATURES]:
        kr = JsonReader(key, f"{keys.path}.{key_id[:70]}")
        key_type = kr.get("keytype").str()
        signers.append(_tuf_key(key_id, key_type))
    meta = spec.get("metadata").get("content").get("signed")
    mtype, version = meta.opt("_type"), meta.opt("version")
    note = f"TUF {mtype.str() if mtype else 'metadata'} version {version.int() if version else '?'}"
    return EntryFields(signers=tuple(signers), notes=(note,))


def _tuf_key(key_id: str, key_type: str) -> Signer:
    return KeySigner(key_type="tuf", fingerprint=key_id.lower(), details=(("keytype", key_type),))


_DIGEST_OIDS = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "1.3.14.3.2.26": "sha1",
}


def rfc3161(spec: JsonReader) -> EntryFields:
    """An RFC 3161 timestamp response: the TSA's certificate and the timestamped digest."""
    tsr_r = spec.get("tsr").get("content")
    data = tsr_r.b64()
    try:
        digest, cert_ders = _walk_timestamp(data)
    except MalformedInputError as e:
        raise tsr_r.fail(str(e)) from None
    signers: tuple[Signer, ...]
    if isinstance(cert_ders, KeySigner):
        signers = (cert_ders,)
    else:
        signers = tuple(signer_from_bytes(d, "x509", tsr_r) for d in cert_ders[:1])
    return EntryFields(signers=signers, artifact_digests=(digest,))


_NAME_ATTRS = {"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C"}


def _tsa_signer_id(signer_infos: der.Tlv, w: str) -> KeySigner:
    """Without certificates in the token, the TSA is named by its SignerInfo: issuer and
    serial of its certificate."""
    infos = der.children(der.expect(signer_infos, der.SET, w), w)
    if not infos:
        raise MalformedInputError("timestamp: no SignerInfo")
    info = der.children(der.expect(infos[0], der.SEQUENCE, w), w)
    if len(info) < 2 or info[1].tag != der.SEQUENCE:
        raise MalformedInputError("timestamp: SignerInfo has no issuer and serial number")
    sid = der.children(info[1], w)
    if len(sid) != 2:
        raise MalformedInputError("timestamp: malformed issuer and serial number")
    serial = der.expect(sid[1], der.INTEGER, w).value.hex()
    parts = []
    for rdn in der.children(der.expect(sid[0], der.SEQUENCE, w), w):
        for atv in der.children(der.expect(rdn, der.SET, w), w):
            pair = der.children(der.expect(atv, der.SEQUENCE, w), w)
            if len(pair) == 2 and pair[0].tag == der.OID:
                oid = der.decode_oid(pair[0].value, w)
                text = pair[1].value.decode("utf-8", errors="replace")
                parts.append(f"{_NAME_ATTRS.get(oid, oid)}={text}")
    issuer = ",".join(reversed(parts))
    return KeySigner(
        key_type="tsa",
        fingerprint=f"serial:{serial}",
        details=(("issuer", issuer), ("serial", serial)),
    )


def _walk_timestamp(data: bytes) -> tuple[Digest, list[bytes] | KeySigner]:
    w = "timestamp"
    resp = der.children(der.expect(der.read(data, w), der.SEQUENCE, w), w)
    if len(resp) < 2:
        raise MalformedInputError("timestamp: response has no token")
    content_info = der.children(der.expect(resp[1], der.SEQUENCE, w), w)
    if len(content_info) != 2 or content_info[1].tag != 0xA0:
        raise MalformedInputError("timestamp: token is not a ContentInfo")
    signed_data = der.children(der.expect(der.read(content_info[1].value, w), der.SEQUENCE, w), w)
    if len(signed_data) < 4:
        raise MalformedInputError("timestamp: SignedData is too short")
    encap = der.children(der.expect(signed_data[2], der.SEQUENCE, w), w)
    if len(encap) != 2 or encap[1].tag != 0xA0:
        raise MalformedInputError("timestamp: no TSTInfo content")
    octets = der.expect(der.read(encap[1].value, w), der.OCTET_STRING, w)
    tst = der.children(der.expect(der.read(octets.value, w), der.SEQUENCE, w), w)
    if len(tst) < 3:
        raise MalformedInputError("timestamp: TSTInfo is too short")
    imprint = der.children(der.expect(tst[2], der.SEQUENCE, w), w)
    if len(imprint) != 2:
        raise MalformedInputError("timestamp: malformed messageImprint")
    alg = der.children(der.expect(imprint[0], der.SEQUENCE, w), w)
    if not alg:
        raise MalformedInputError("timestamp: messageImprint has no algorithm")
    oid = der.decode_oid(der.expect(alg[0], der.OID, w).value, w)
    name = _DIGEST_OIDS.get(oid, oid)
    hashed = der.expect(imprint[1], der.OCTET_STRING, w).value
    certs = [
        _reencode(c)
        for item in signed_data[3:]
        if item.tag == 0xA0  # [0] IMPLICIT SET OF Certificate
        for c in der.children(item, w)
    ]
    if not certs:
        return Digest(name, hashed.hex()), _tsa_signer_id(signed_data[-1], w)
    return Digest(name, hashed.hex()), certs


def _reencode(tlv: der.Tlv) -> bytes:
    n = len(tlv.value)
    if n < 0x80:
        header = bytes([tlv.tag, n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        header = bytes([tlv.tag, 0x80 | len(size)]) + size
    return header + tlv.value


KINDS: dict[tuple[str, str], Callable[[JsonReader], EntryFields]] = {
    ("hashedrekord", "0.0.1"): hashedrekord,
    ("rekord", "0.0.1"): rekord,
    ("dsse", "0.0.1"): dsse,
    ("intoto", "0.0.1"): intoto_001,
    ("intoto", "0.0.2"): intoto_002,
    ("jar", "0.0.1"): jar,
    ("rpm", "0.0.1"): _package_kind("package", "pgp"),
    ("alpine", "0.0.1"): _package_kind("package", "x509"),
    ("helm", "0.0.1"): _package_kind("chart", "pgp"),
    ("cose", "0.0.1"): cose,
    ("tuf", "0.0.1"): tuf,
    ("rfc3161", "0.0.1"): rfc3161,
}
