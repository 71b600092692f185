"""Short, classified reasons for what stops a log's passes, for public surfaces.

The full text of an error can hold SQL and its parameters, URLs, paths or what a hostile log
sent; it belongs in the logs and behind the API's read token. ``/readyz`` (which may be
public) and the health findings sent to alert sinks carry only a reason from this fixed
vocabulary.
"""

from __future__ import annotations

from monitor.core.errors import (
    ConfigError,
    LogResponseError,
    MissingEntriesError,
    MonitorError,
    StorageError,
    TransientLogError,
    VerificationError,
)

REASONS = (
    "database_unavailable",
    "database_timeout",
    "log_timeout",
    "log_rate_limited",
    "log_server_error",
    "log_connection_failed",
    "log_truncated_response",
    "log_unavailable",
    "log_missing_entries",
    "log_bad_response",
    "log_verification_failed",
    "configuration_error",
    "monitor_error",
    "internal_error",
)

# what the HTTP client says last when it gives up (monitor.logclient.http), by reason
_TRANSIENT = (
    ("timed out", "log_timeout"),
    ("HTTP 429", "log_rate_limited"),
    ("HTTP 5", "log_server_error"),
    ("connection error", "log_connection_failed"),
    ("truncated", "log_truncated_response"),
)


# by the error's class, most specific first
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (StorageError, "database_unavailable"),
    (MissingEntriesError, "log_missing_entries"),
    (TransientLogError, "log_unavailable"),
    (LogResponseError, "log_bad_response"),
    (VerificationError, "log_verification_failed"),
    (ConfigError, "configuration_error"),
    (MonitorError, "monitor_error"),
)


def classify(error: BaseException) -> str:
    """The reason for ``error``: one of ``REASONS``."""
    reason = next((r for cls, r in _BY_CLASS if isinstance(error, cls)), "internal_error")
    if reason == "log_unavailable":
        text = str(error)
        reason = next((r for marker, r in _TRANSIENT if marker in text), reason)
    return reason
