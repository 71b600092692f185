"""High availability: several replicas of the daemon on one PostgreSQL database, each log led
by one of them at a time (``monitor.daemon.leadership``)."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from typing import Annotated

from pydantic import Field

from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import Name


def default_replica_id() -> str:
    """The host name, as a name may be written (a pod's or container's host name is its
    own): other characters become ``-``, and it is cut at 63 characters."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-._") or "replica"
    return host[:63]


class HaSettings(ConfigModel):
    """Leadership of the logs over several replicas."""

    replica_id: Name = Field(
        default_factory=default_replica_id,
        description="This replica's name, shown as the leader of the logs it leads (API, "
        "metrics, logs). Default: the host name, which differs between pods and containers.",
    )
    lease_ttl: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(minutes=5))] = Field(
        default=timedelta(seconds=10),
        description="How long a replica's lease on a log lasts unless renewed (every "
        "third of it). When a replica dies, another takes its logs over within about "
        "this long; a replica that cannot renew stops writing before its lease ends.",
    )

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a third of the lease, so that two may fail in a row."""
        return self.lease_ttl.total_seconds() / 3
