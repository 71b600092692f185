"""The configured logs against the trust root: every log must be one whose key the trusted root
holds (else its checkpoints cannot be verified), speak the API the signing config says, and a
``discover`` log must find at least one current Rekor v2 shard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.config.load import settings_from_document
from monitor.config.models import LogSettings, Settings
from monitor.config.paths import directory_of
from monitor.config.problems import Problem
from monitor.config.yamldoc import read_document
from monitor.core.errors import TrustRootError
from monitor.trust import TransparencyLog, TrustRoot, load_trust_root

_API = {"v1": 1, "v2": 2}


@dataclass(frozen=True)
class ResolvedLog:
    """A configured log and the trust-root logs it stands for (one, or the v2 shards)."""

    config: LogSettings
    logs: tuple[TransparencyLog, ...]


def resolve_logs(
    settings: Settings, trust: TrustRoot, at: datetime | None = None
) -> tuple[tuple[ResolvedLog, ...], list[Problem]]:
    """Each configured log with its trust-root logs, and the problems found on the way."""
    when = at or datetime.now(UTC)
    resolved: list[ResolvedLog] = []
    problems: list[Problem] = []
    for i, log in enumerate(settings.logs):
        if log.discover:
            shards = trust.v2_shards(when)
            problems += [
                Problem(("logs", i, "discover"), f"{shard.validity_problem()} ({trust.source})")
                for shard in trust.v2_shards()
                if shard.validity_problem()
            ]
            if not shards:
                problems.append(
                    Problem(
                        ("logs", i, "discover"),
                        f"the signing config ({_source(settings)}) lists no current v2 shard",
                    )
                )
            resolved.append(ResolvedLog(log, shards))
            continue
        assert log.url is not None  # a log without discover has a url (checked at load)
        found = trust.log_by_url(log.url)
        if found is None:
            known = ", ".join(t.base_url for t in trust.logs) or "none"
            problems.append(
                Problem(
                    ("logs", i, "url"),
                    f"not a log of the trusted root ({trust.source}), so its checkpoints "
                    f"cannot be verified; it lists {known}",
                )
            )
            continue
        problem = found.validity_problem()
        if problem is not None:
            problems.append(Problem(("logs", i, "url"), f"{problem} ({trust.source})"))
            continue
        if found.api_version is not None and found.api_version != _API[log.api]:
            problems.append(
                Problem(
                    ("logs", i, "api"),
                    f"the signing config says {found.base_url} speaks v{found.api_version}",
                )
            )
        resolved.append(ResolvedLog(log, (found,)))
    return tuple(resolved), problems


@dataclass(frozen=True)
class CheckedConfig:
    """A configuration file that loads, with the trust root its logs were checked against."""

    settings: Settings
    trust: TrustRoot
    logs: tuple[ResolvedLog, ...]


def load_checked(
    path: str, load_trust: Callable[[Settings], TrustRoot] | None = None
) -> CheckedConfig:
    """Load ``path`` and check its logs against the trust root (``load_trust``, by default
    the files the settings name); every problem is reported against the file."""
    doc = read_document(path)
    settings = settings_from_document(doc, base=directory_of(path))
    try:
        if load_trust is None:
            trust = load_trust_root(settings.trust.trusted_root, settings.trust.signing_config)
        else:
            trust = load_trust(settings)
    except TrustRootError as e:
        raise doc.error([Problem(("trust",), str(e))]) from None
    resolved, problems = resolve_logs(settings, trust)
    if problems:
        raise doc.error(problems)
    return CheckedConfig(settings, trust, resolved)


def _source(settings: Settings) -> str:
    path = settings.trust.signing_config
    return "the default one" if path == "default" else path


def load_trust(settings: Settings) -> TrustRoot:
    """The trust root the settings name: TUF (online) or files (offline)."""
    if settings.trust.refresh == "tuf":
        from monitor.trust.tuf import refresh_trust_root  # noqa: PLC0415 - online only

        return refresh_trust_root(Path(settings.trust.tuf_cache), str(settings.trust.tuf_url))
    return load_trust_root(settings.trust.trusted_root, settings.trust.signing_config)
