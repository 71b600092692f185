"""Small value types of the configuration, each validated with a message that says what to
write instead: names, environment variable names, URLs, addresses, start points, paths.

Each type is an ``Annotated`` alias that carries its validator and a ``Shown``: the words the
configuration reference uses for it, declared beside the validator they describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, PlainValidator, SecretStr, ValidationInfo

from monitor.config.paths import anchored, base_of
from monitor.config.problems import error
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
DEFAULT = "default"  # the production trust files shipped with the package


def name(value: str) -> str:
    """Names of logs, rules, sinks and tokens: they appear in findings, labels and URLs."""
    if not _NAME.fullmatch(value):
        raise error(
            "a name starts with a letter or digit and has only letters, digits, '.', '_' "
            "and '-' (at most 63 characters)"
        )
    return value


def env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise error("must be the name of an environment variable (letters, digits and '_')")
    return value


def http_url(value: str) -> str:
    """An http(s) URL with a host, without its trailing slash. Never echoed: it may be secret."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise error("must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise error("must be an http(s) URL with a host, such as https://host/path")
    if any(c.isspace() for c in value):
        raise error("must be an http(s) URL without spaces")
    return value.rstrip("/")


def secret_http_url(value: Any) -> Any:
    """``http_url`` before the value becomes a ``SecretStr``."""
    if isinstance(value, str):
        return http_url(value)
    if isinstance(value, SecretStr):
        return SecretStr(http_url(value.get_secret_value()))
    return value


def url_host(url: str) -> str:
    return urlsplit(url).hostname or ""


def trust_file(value: str, info: ValidationInfo) -> str:
    """``default`` or the path of a readable file, relative to the configuration file's
    directory (``monitor.config.paths``). Kept as written: the loader anchors it."""
    if value == DEFAULT:
        return value
    path = Path(anchored(value, base_of(info)))
    if not path.is_file():
        where = f" ({path})" if str(path) != value else ""
        raise error(f"{value}: no such file{where} (give a path, or 'default')")
    return value


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def listen_address(value: Any) -> ListenAddress:
    """``host:port``; an IPv6 host in brackets: ``[::1]:9464``. Port 0 takes any free port
    (the daemon logs the one it got)."""
    if isinstance(value, ListenAddress):
        return value
    how = "must be host:port, such as 127.0.0.1:9464 or [::1]:9464"
    if not isinstance(value, str):
        raise error(how)
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise error(how)
    if not sep or not host or not port.isdigit():
        raise error(how)
    if not 0 <= int(port) < 65536:
        raise error("the port must be between 0 (any free port) and 65535")
    return ListenAddress(host, int(port))


Start = Literal["tip", "resume"] | int


def start_point(value: Any) -> Start:
    """``tip`` (from the current end), ``resume`` (from the stored cursor), or an index."""
    if value in ("tip", "resume"):
        return "tip" if value == "tip" else "resume"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise error("must be tip, resume, or a log index (an integer, 0 or more)")


def sha256_hex(value: Any) -> Any:
    """64 hex digits, lower-cased. Never echoed: it identifies a bearer token."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str):
        return value
    text = raw.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise error("must be 64 hexadecimal digits: the SHA-256 of the bearer token")
    return text


def webhook_secret(value: Any) -> Any:
    """Standard Webhooks secrets (``whsec_`` + base64, space-separated while rotating),
    checked at load so that a bad one is a config error, not a failed delivery. Never
    echoed."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str):
        return value
    try:
        parse_secrets(raw)
    except ConfigError as e:
        raise error(str(e)) from None
    return value


def none_is_empty(value: Any) -> Any:
    """``watch:`` with every rule commented out is an empty list, not an error."""
    return () if value is None else value


def distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise error("an empty list: remove the option instead")
    if len(set(values)) != len(values):
        raise error("lists a value twice")
    return values


@dataclass(frozen=True)
class Shown:
    """Field metadata, ignored by validation: what the configuration reference calls the
    field's type (``name``, ``http(s) URL``). A field whose validator replaces its declared
    type (a ``PlainValidator``) must say it, or the reference refuses to describe it."""

    text: str


Name = Annotated[str, AfterValidator(name), Shown("name")]
EnvName = Annotated[str, AfterValidator(env_name), Shown("variable name")]
HttpUrl = Annotated[str, AfterValidator(http_url), Shown("http(s) URL")]
SecretHttpUrl = Annotated[SecretStr, BeforeValidator(secret_http_url), Shown("http(s) URL")]
TrustFile = Annotated[str, AfterValidator(trust_file), Shown("file path or `default`")]
StartPoint = Annotated[Start, PlainValidator(start_point), Shown("`tip`, `resume` or an index")]
Listen = Annotated[ListenAddress, PlainValidator(listen_address), Shown("`host:port`")]
Sha256Hex = Annotated[SecretStr | None, BeforeValidator(sha256_hex), Shown("64 hex digits")]
WebhookSecret = Annotated[
    SecretStr | None, BeforeValidator(webhook_secret), Shown("`whsec_…`, space-separated")
]
