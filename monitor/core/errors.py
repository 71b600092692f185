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


class UnreadableInputError(MalformedInputError):
    """Input could not be checked at all: unreadable, not JSON, or of no form we know (as
    opposed to a known form with a malformed field, which fails its check)."""


class QueryError(MalformedInputError):
    """A query that names what is not there or cannot be searched: an unknown log, rule,
    sink or extension, a fingerprint or digest of no known shape, a bad page cursor. Refused,
    so that a typo never reads as "nothing found". ``param`` names the API parameter."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class TransientLogError(MonitorError):
    """The log could not be read right now (network, 5xx, rate limit); worth retrying."""


class LogResponseError(MonitorError):
    """The log answered, but not with what the protocol allows (bad JSON, wrong shape, an
    oversize body, a refused request). Not retried as such: the caller decides."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MissingEntriesError(TransientLogError):
    """The log did not serve entries it should have; they are never skipped silently."""

    def __init__(self, indexes: list[int]) -> None:
        shown = ", ".join(str(i) for i in indexes[:10]) + (" ..." if len(indexes) > 10 else "")
        super().__init__(f"log did not serve {len(indexes)} entries: {shown}")
        self.indexes = indexes


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


class CheckpointError(VerificationError):
    """A checkpoint the log served failed verification (signature, format, origin or
    agreement with what the log says beside it). ``raw`` keeps what was served, as evidence."""

    def __init__(self, check: str, message: str, raw: str) -> None:
        super().__init__(check, message)
        self.raw = raw


class StorageError(MonitorError):
    """The database failed or refused a read or write. Not retried silently: the task that
    hit it fails, and whoever runs the task decides."""


class ParseWorkerError(MonitorError):
    """A parse worker process died (killed, out of memory) before it answered. Its pool is
    started afresh; the pass that sent the entries fails and is retried, moving nothing."""


class LeaseLostError(MonitorError):
    """A replica no longer leads the log it was writing (its lease ran out or another
    replica took it): the batch was refused, and the replica steps down from the log."""

    def __init__(self, log: str, message: str) -> None:
        super().__init__(message)
        self.log = log


class WitnessConfigError(ConfigError):
    """A witness verifier key (vkey) or a C2SP tlog-policy is malformed or inconsistent.

    A ConfigError because vkeys and policies only ever come from the operator's configuration:
    the monitor cannot check witnessing as configured, so it fails at start. What a log or a
    witness sends (cosignature lines) never raises this; it is reported per line instead.
    ``source`` and ``line`` say where, when known."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        where = f"{source}:{line}: " if source and line else f"{source}: " if source else ""
        super().__init__(where + message)
        self.source = source
        self.line = line
        self.reason = message


class RegistryError(MonitorError):
    """A container registry answered, but not as the distribution spec allows (bad JSON, a
    wrong shape, an oversize or endless answer, a refused request). The message names the
    registry and the reference; retries of the network itself raise ``TransientLogError``."""

    def __init__(self, registry: str, reference: str, message: str) -> None:
        super().__init__(f"{_registry_where(registry, reference)}: {message}")
        self.registry = registry
        self.reference = reference


def _registry_where(registry: str, reference: str) -> str:
    """``reference`` alone when it already names the registry, else both."""
    return reference if reference.startswith(f"{registry}/") else f"{registry}: {reference}"


class RegistryAuthError(RegistryError):
    """The registry or its token service refused our credentials, or its challenge or token
    could not be used."""


class RegistryDigestError(VerificationError):
    """What a registry served does not hash to the digest asked for (or that it claimed): the
    registry is lying or broken, and nothing it served under that digest is used."""

    def __init__(self, registry: str, reference: str, message: str) -> None:
        super().__init__("registry_digest", f"{_registry_where(registry, reference)}: {message}")
        self.registry = registry
        self.reference = reference
