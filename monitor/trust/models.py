"""Pydantic models of the Sigstore TrustedRoot and SigningConfig JSON (protobuf-specs).

They read the protobuf JSON mapping after ``monitor.core.protojson.normalize`` (one spelling, nulls
dropped): unknown fields are ignored, timestamps are RFC 3339 with a time zone, enums may be
numbers, integers may be strings. Only the fields the monitor uses are modelled. These live at
the edge: ``monitor.trust.root`` turns them into frozen domain objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from monitor.core.protojson import HASH_ALGORITHMS, PUBLIC_KEY_DETAILS, enum_name, parse_timestamp


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")  # protobuf JSON has no other
    return parse_timestamp(value)


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
KeyDetails = Annotated[str, BeforeValidator(lambda v: enum_name(v, PUBLIC_KEY_DETAILS))]
HashAlgorithm = Annotated[str, BeforeValidator(lambda v: enum_name(v, HASH_ALGORITHMS))]


class TimeRange(_Model):
    start: Timestamp | None = None
    end: Timestamp | None = None


class PublicKey(_Model):
    raw_bytes: str = Field(alias="rawBytes")
    key_details: KeyDetails = Field(alias="keyDetails")
    valid_for: TimeRange | None = Field(default=None, alias="validFor")


class LogId(_Model):
    key_id: str = Field(alias="keyId")


class TransparencyLogInstance(_Model):
    base_url: str = Field(alias="baseUrl")
    hash_algorithm: HashAlgorithm = Field(default="SHA2_256", alias="hashAlgorithm")
    public_key: PublicKey = Field(alias="publicKey")
    log_id: LogId = Field(alias="logId")
    checkpoint_key_id: LogId | None = Field(default=None, alias="checkpointKeyId")
    operator: str = ""


class X509Certificate(_Model):
    raw_bytes: str = Field(alias="rawBytes")


class CertChain(_Model):
    certificates: list[X509Certificate] = []


class DistinguishedName(_Model):
    organization: str = ""
    common_name: str = Field(default="", alias="commonName")


class CertificateAuthority(_Model):
    subject: DistinguishedName = DistinguishedName()
    uri: str = ""
    cert_chain: CertChain = Field(alias="certChain")
    valid_for: TimeRange | None = Field(default=None, alias="validFor")
    operator: str = ""


class TrustedRoot(_Model):
    media_type: str = Field(alias="mediaType")
    tlogs: list[TransparencyLogInstance] = []
    certificate_authorities: list[CertificateAuthority] = Field(
        default=[], alias="certificateAuthorities"
    )
    ctlogs: list[TransparencyLogInstance] = []


class Service(_Model):
    url: str
    major_api_version: int = Field(alias="majorApiVersion")
    valid_for: TimeRange | None = Field(default=None, alias="validFor")
    operator: str = ""


class SigningConfig(_Model):
    media_type: str = Field(alias="mediaType")
    rekor_tlog_urls: list[Service] = Field(default=[], alias="rekorTlogUrls")
    ca_urls: list[Service] = Field(default=[], alias="caUrls")
