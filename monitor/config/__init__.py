"""The configuration: one YAML file validated into one frozen ``Settings`` object.

``load_settings(path)`` reads it, resolves secrets from the environment and returns the
settings, or raises ``ConfigFileError`` (a ``ConfigError``) listing every problem as
``<file>:<line>: <field.path>: <what is wrong>``. ``config/monitor.example.yaml`` documents
every option.

Above rules: may import core, tlog, trust, entries and rules; never alerts, storage or the
daemon, which read the settings it makes.
"""

from monitor.config.load import DEFAULT_CONFIG_PATH, load_settings, parse_settings
from monitor.config.models import (
    AlertSettings,
    DatabaseSettings,
    HealthSettings,
    ImageSettings,
    LogSettings,
    ServerSettings,
    Settings,
    SinkSettings,
    TokenSettings,
    TrustSettings,
    WatchRule,
)
from monitor.config.problems import ConfigFileError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AlertSettings",
    "ConfigFileError",
    "DatabaseSettings",
    "HealthSettings",
    "ImageSettings",
    "LogSettings",
    "ServerSettings",
    "Settings",
    "SinkSettings",
    "TokenSettings",
    "TrustSettings",
    "WatchRule",
    "load_settings",
    "parse_settings",
]
