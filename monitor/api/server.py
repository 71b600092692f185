"""The API's listener, started and stopped with the daemon."""

from __future__ import annotations

import logging

from aiohttp import web

from monitor.api.app import build_app
from monitor.api.context import ApiContext
from monitor.errors import ConfigError

log = logging.getLogger("monitor.api")

MAX_HEADER_BYTES = 16 * 1024
SHUTDOWN_TIMEOUT = 3.0  # seconds for requests under way when the daemon stops


class ApiServer:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None
        self.url: str | None = None  # http://host:port once listening (the real port)

    async def start(self) -> str:
        listen = self.ctx.server.listen
        runner = web.AppRunner(
            build_app(self.ctx),
            access_log=None,  # requests are counted in metrics; a log line each is noise
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            handle_signals=False,
            # long URLs reach the handlers, which refuse them as JSON naming the parameter
            # (aiohttp's own refusal would be plain text)
            max_line_size=self.ctx.server.max_request_bytes,
            max_field_size=MAX_HEADER_BYTES,
        )
        await runner.setup()
        site = web.TCPSite(runner, listen.host, listen.port)
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
        fields = {"url": self.url, "tokens": len(self.ctx.server.tokens)}
        log.info("api listening", extra={"fields": fields})
        if not self.ctx.server.tokens:
            log.warning(
                "no API tokens configured (server.tokens): /api/v1 refuses every request",
                extra={"fields": fields},
            )
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _bound(runner: web.AppRunner) -> tuple[str, int]:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return str(addr[0]), int(addr[1])
    raise RuntimeError("the API site has no address")
