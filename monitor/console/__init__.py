"""The web console: findings, history and logs as server-rendered pages, served by the API
server under ``/ui/`` with the API's tokens (``console_app`` is its ``Mount``)."""

from monitor.console.app import PREFIX, console_app

__all__ = ["PREFIX", "console_app"]
