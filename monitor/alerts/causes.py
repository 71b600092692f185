"""Why a delivery failed, in words for whoever fixes it: the name could not be resolved, the
connection was refused, TLS failed, no answer came in time, or the HTTP status the receiver
gave. Never the URL: a Slack webhook's path is its secret; the host may be shown."""

from __future__ import annotations

import ssl
from http import HTTPStatus

import aiohttp


def http_cause(status: int) -> str:
    """``HTTP 503 Service Unavailable``; a redirect says it is not followed."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    text = f"HTTP {status} {phrase}".rstrip()
    if 300 <= status < 400:
        text += " (a redirect: not followed, a signed alert must not go elsewhere)"
    return text


def error_cause(e: BaseException, host: str, timeout: float) -> str:
    """What a failed request came to, from the exception aiohttp raised."""
    if isinstance(e, aiohttp.ClientConnectorError):
        return _connect_cause(e, host)
    if isinstance(e, ssl.SSLError):
        return f"TLS: the handshake with {host} failed"
    causes: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (aiohttp.ServerDisconnectedError, f"{host} closed the connection without answering"),
        ((TimeoutError, aiohttp.ServerTimeoutError), f"no answer from {host} within {timeout:g}s"),
        (
            (aiohttp.ClientPayloadError, aiohttp.ClientResponseError),
            f"{host} sent a malformed answer",
        ),
    )
    for kinds, text in causes:
        if isinstance(e, kinds):
            return text
    return type(e).__name__  # the class only: a message may quote the URL


def _connect_cause(e: aiohttp.ClientConnectorError, host: str) -> str:
    """Why no connection was made: DNS, TLS, a refusal, or what the system said."""
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return f"DNS: the name {host} cannot be resolved"
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        detail = _certificate_detail(e.certificate_error)
        return f"TLS: the certificate of {host} does not verify{detail}"
    if isinstance(e, aiohttp.ClientSSLError):
        return f"TLS: the handshake with {host} failed"
    if isinstance(e.os_error, ConnectionRefusedError):
        return f"connection refused by {host} (nothing listens on that port)"
    return f"cannot connect to {host}: {e.os_error.strerror or type(e.os_error).__name__}"


def _certificate_detail(error: Exception) -> str:
    message = getattr(error, "verify_message", None)
    return f" ({message})" if isinstance(message, str) and message else ""
