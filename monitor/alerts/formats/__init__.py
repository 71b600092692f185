"""One module per sink type, each a ``SinkFormat`` (``render(sink, alert, ctx)``): the
generic signed webhook, Slack, PagerDuty and Prometheus Alertmanager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from monitor.alerts.formats import alertmanager, generic, pagerduty, slack
from monitor.alerts.message import SinkFormat
from monitor.config.alerting import SinkType

FORMATS: Final[Mapping[SinkType, SinkFormat]] = {
    "webhook": generic.render,
    "slack": slack.render,
    "pagerduty": pagerduty.render,
    "alertmanager": alertmanager.render,
}
