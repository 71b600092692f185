"""The one error hierarchy of tlog-monitor.

Four families, each handled differently by callers:

- ``TransientLogError``: the log or the network misbehaved in a way that may pass; retry.
- ``VerificationError``: evidence failed a cryptographic or structural check; alert, keep the
  evidence, never advance past it.
- ``MalformedInputError``: input (an entry, a bundle, a note) cannot be parsed; record, count
  and go on.
- ``ConfigError`` / ``TrustRootError``: the monitor cannot start as configured; fail at start,
  naming what is wrong.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error tlog-monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is unusable."""


class TrustRootError(ConfigError):
    """The trusted root or signing config is missing, unreadable or inconsistent."""


class MalformedInputError(MonitorError):
    """Input could not be parsed; the message says where and why."""


class TransientLogError(MonitorError):
    """The log could not be read right now (network, 5xx, rate limit); worth retrying."""


class VerificationError(MonitorError):
    """A check failed. ``check`` names which one, so that reports can say exactly what broke."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


class ProofError(VerificationError):
    """An inclusion or consistency proof does not verify."""


class NoteError(VerificationError):
    """A signed note (checkpoint) is malformed or its signature does not verify."""
