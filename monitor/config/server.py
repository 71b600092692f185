"""The HTTP server's settings: where it listens, who may ask it what, and how much it takes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from monitor.config.base import ConfigModel, raw_items
from monitor.config.durations import Duration
from monitor.config.fields import (
    EnvName,
    Listen,
    ListenAddress,
    Name,
    Sha256Hex,
    distinct,
    none_is_empty,
)
from monitor.config.paths import anchored, base_of
from monitor.config.problems import Problem, error
from monitor.core.errors import WitnessConfigError
from monitor.tlog.cosign import CheckpointCosigner

DEFAULT_LISTEN = ListenAddress("127.0.0.1", 9464)
MAX_KEY_FILE_BYTES = 4096


def read_cosign_key(path: str) -> CheckpointCosigner:
    """The monitor's cosigning key in ``path``; ``WitnessConfigError`` naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise WitnessConfigError(f"cannot read the key: {e.strerror or e}", path) from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise WitnessConfigError(f"larger than {MAX_KEY_FILE_BYTES} bytes: not a key", path)
    return CheckpointCosigner.parse(raw.decode("ascii", "replace"), path)


def _cosign_key(value: str, info: ValidationInfo) -> str:
    """A key file (relative to the configuration file's directory), read now so that a
    mistake is named at start."""
    value = anchored(value, base_of(info))
    try:
        read_cosign_key(value)
    except WitnessConfigError as e:
        raise error(str(e)) from None
    return value


class TokenSettings(ConfigModel):
    """A bearer token for the HTTP API, by its SHA-256 (the token itself is never stored)."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("sha256", "sha256_env"),)

    name: Name = Field(
        description="Who holds the token: recorded as the author when it acknowledges or "
        "resolves a finding."
    )
    sha256: Sha256Hex = Field(
        default=None,
        description="The SHA-256 of the token, 64 hex digits "
        '(`printf %s "$TOKEN" | sha256sum`); the token itself is never stored. Give `sha256` '
        "or `sha256_env`.",
    )
    sha256_env: EnvName | None = None
    scopes: Annotated[tuple[Literal["read", "write"], ...], AfterValidator(distinct)] = Field(
        default=("read",),
        description="`read`: query entries, findings, logs (and `/metrics` and the health "
        "endpoints when they are not public). `write`: acknowledge and resolve findings. "
        "`write` does not imply `read`.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        if raw.get("sha256") is None and raw.get("sha256_env") is None:
            return [Problem(("sha256",), "give sha256 (hex SHA-256 of the token) or sha256_env")]
        return []

    def digest(self) -> bytes:
        """The SHA-256 of the token, to compare in constant time."""
        assert self.sha256 is not None  # required by cross_checks
        return bytes.fromhex(self.sha256.get_secret_value())


_TOKENS_NOTE = (
    "Make a token and its hash with "
    "`TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')` and "
    '`printf %s "$TOKEN" | sha256sum`. Names and hashes are unique. See '
    "[the API](api.md#authentication)."
)


class ServerSettings(ConfigModel):
    """The HTTP API, ``/metrics`` and the health endpoints (one listener)."""

    listen: Listen = Field(
        default=DEFAULT_LISTEN,
        description="Where the HTTP API, `/metrics`, `/healthz` and `/readyz` listen: "
        "`host:port`, an IPv6 host in brackets (`[::1]:9464`). Port 0 takes any free port (the "
        "daemon logs the one it got). Use `0.0.0.0:9464` in a container, behind a network "
        "policy or a TLS-terminating proxy: the monitor speaks plain HTTP.",
    )
    tokens: Annotated[tuple[TokenSettings, ...], BeforeValidator(none_is_empty)] = Field(
        default=(),
        description="Bearer tokens for the API, by SHA-256. Without any, the API answers no "
        "one (401) but the endpoints made public below.",
        json_schema_extra={"note": _TOKENS_NOTE},
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve `/metrics` without a token. Otherwise a token with the `read` scope "
        "is needed.",
    )
    health_public: bool = Field(
        default=True,
        description="Serve `/healthz` and `/readyz` without a token (for load balancers and "
        "probes; they say only whether the monitor works).",
    )
    max_page_size: int = Field(
        default=1000, ge=1, le=10_000, description="The largest page the API returns (`limit`)."
    )
    max_request_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        le=64 << 20,
        description="The largest request body, and request line, accepted.",
    )
    # slow or idle clients must not hold the daemon's file descriptors (monitor.api.connections)
    max_connections: int = Field(
        default=256,
        ge=1,
        le=65_536,
        description="The most connections open at once. A new one beyond them closes the one "
        "that has waited longest for a request (a slow or idle client); when every one is "
        "mid-request, the new one is refused with a 503. Lowered at start to a quarter of the "
        "process's open-file limit if that is less, so that a flood of connections cannot take "
        "the descriptors the log passes, the database and alert delivery need.",
    )
    cosign_key: Annotated[str, AfterValidator(_cosign_key)] | None = Field(
        default=None,
        description="A file holding the monitor's own witness key (`PRIVATE+KEY+<name>+...`, "
        "as `tlog-monitor cosign-key` writes it). When set, the checkpoint "
        "`/api/v1/logs/<log>/checkpoint` serves carries the monitor's cosignature/v1 (C2SP "
        "tlog-cosignature) after the log's signature and the witnesses': peers that "
        "configure the key's verifier key know the monitor verified that checkpoint and "
        "proved it consistent with every one it saw before, as a witness would.",
    )
    header_timeout: Annotated[
        timedelta, Duration(timedelta(milliseconds=100), timedelta(minutes=5))
    ] = Field(
        default=timedelta(seconds=10),
        description="A request's head (request line and headers) must be complete this long "
        "after its first byte, or the connection is closed.",
    )
    body_timeout: Annotated[
        timedelta, Duration(timedelta(milliseconds=100), timedelta(minutes=5))
    ] = Field(
        default=timedelta(seconds=10),
        description="A request's body must be complete this long after its head, or the answer "
        "is a 408 and the connection is closed.",
    )
    keepalive_timeout: Annotated[
        timedelta, Duration(timedelta(milliseconds=100), timedelta(hours=1))
    ] = Field(
        default=timedelta(seconds=30),
        description="A connection without a complete request this long after it opened, or "
        "after its last response, is closed, whatever it sends meanwhile.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        seen: dict[str, int] = {}
        out = []
        for i, token in raw_items(raw.get("tokens")):
            digest = token.get("sha256")
            if not isinstance(digest, str):
                continue
            digest = digest.strip().lower()
            if digest in seen:
                out.append(
                    Problem(
                        ("tokens", i, "sha256"),
                        f"the same hash as tokens[{seen[digest]}]: one token, one name",
                    )
                )
            seen.setdefault(digest, i)
        return out
