"""What a valid configuration leaves undone: said once by ``run`` and ``check-config``, since
a monitor that matches nothing, or tells nobody, looks healthy while it is not doing the job
people expect of it."""

from __future__ import annotations

from monitor.config.models import Settings


def warnings(settings: Settings) -> list[str]:
    out = []
    if not settings.watch:
        out.append(
            "no watch rules: the logs are verified, but no entry is looked for as yours "
            "(add rules under watch)"
        )
    if not settings.alerts.sinks:
        out.append(
            "no alert sinks: findings (a log caught lying included) are stored and served "
            "by the API and `tlog-monitor findings`, and nobody is told (add alerts.sinks)"
        )
    return out
