"""The API's listener, started and stopped with the daemon."""

from __future__ import annotations

import logging
import resource
from collections.abc import Mapping

from aiohttp import web

from monitor.api.app import Mount, build_app
from monitor.api.connections import ConnectionGuard, ConnectionLimits, GuardedSite
from monitor.api.context import ApiContext
from monitor.api.router import Api
from monitor.core.errors import ConfigError

log = logging.getLogger("monitor.api")

MAX_HEADER_BYTES = 16 * 1024
SHUTDOWN_TIMEOUT = 3.0  # seconds for requests under way when the daemon stops
# seconds a client may take to finish sending a body the API did not read (a refused POST)
# before the connection is closed: long enough for a client on loopback or a LAN
LINGER_SECONDS = 2.0


class ApiServer:
    def __init__(self, ctx: ApiContext, mounts: Mapping[str, Mount] = {}) -> None:
        self.ctx = ctx
        self.mounts = dict(mounts)  # applications served beside the API (the console)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None  # http://host:port once listening (the real port)

    async def start(self) -> str:
        settings = self.ctx.server
        listen = settings.listen
        api = Api(self.ctx)
        limits = ConnectionLimits(
            max_connections=connection_cap(settings.max_connections),
            header_timeout=settings.header_timeout.total_seconds(),
        )
        guard = ConnectionGuard(limits, api.metrics)
        runner = web.AppRunner(
            build_app(api, [guard.middleware], self.mounts),
            access_log=None,  # requests are counted in metrics; a log line each is noise
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            handle_signals=False,
            # long URLs reach the handlers, which refuse them as JSON naming the parameter
            # (aiohttp's own refusal would be plain text)
            max_line_size=settings.max_request_bytes,
            max_field_size=MAX_HEADER_BYTES,
            # closes a connection without a complete request this long after it opened or
            # after its last response, however many bytes it trickles meanwhile
            keepalive_timeout=settings.keepalive_timeout.total_seconds(),
            lingering_time=LINGER_SECONDS,
        )
        await runner.setup()
        site = GuardedSite(runner, listen.host, listen.port, guard)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise ConfigError(
                f"server.listen: cannot listen on {listen.host}:{listen.port}: {e.strerror or e}"
            ) from None
        self._runner = runner
        host, port = _bound(runner)
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        fields = {
            "url": self.url,
            "tokens": len(settings.tokens),
            "max_connections": limits.max_connections,
        }
        log.info("api listening", extra={"fields": fields})
        if limits.max_connections < settings.max_connections:
            log.warning(
                "server.max_connections lowered to a quarter of the open-file limit, so that "
                "the API cannot take the descriptors the log passes and the database need",
                extra={"fields": {"configured": settings.max_connections, **fields}},
            )
        if not settings.tokens:
            log.warning(
                "no API tokens configured (server.tokens): /api/v1 refuses every request",
                extra={"fields": fields},
            )
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def connection_cap(configured: int) -> int:
    """``configured``, or a quarter of the process's open-file limit if that is lower: with
    the connections being accepted and closed meanwhile, a flood then holds at most about half
    the descriptors, and the log passes, the database and alert delivery have the rest."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, soft // 4))


def _bound(runner: web.AppRunner) -> tuple[str, int]:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return str(addr[0]), int(addr[1])
    raise RuntimeError("the API site has no address")
