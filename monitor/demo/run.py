"""The demo, start to stop, on one event loop: the simulator (growing, with planted entries),
the webhook receiver, and the monitor on the demo configuration.

Order matters: the simulator first (it writes the trust files the configuration names), then
the configuration is checked against the demo's layout (its database is deleted at every
start, so it must be the demo's own), then the receiver (alerts may go out as soon as the
monitor runs), then the monitor. SIGINT and SIGTERM stop everything, in reverse order; a
second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.config.trustcheck import load_checked
from monitor.core.aio import cancel_and_wait
from monitor.core.errors import ConfigError
from monitor.daemon.service import Monitor
from monitor.demo.banner import banner, command
from monitor.demo.layout import DEFAULT_PORT, HOST, Layout
from monitor.demo.plants import Planter
from monitor.demo.receiver import AlertReceiver
from monitor.sim.run import RunningSim, SimConfig, build_state, start, write_trust_files

DEFAULT_CONFIG = Path("config/demo.yaml")
SEED = 1


@dataclass(frozen=True)
class DemoOptions:
    config: Path = DEFAULT_CONFIG
    port: int = DEFAULT_PORT
    duration: float | None = None  # seconds; None: until a signal
    entries: int = 1000  # in each simulated log at the start; verified first, in seconds
    rate: float = 5.0  # entries a second added to each log


def write_trust(port: int = DEFAULT_PORT) -> Path:
    """Write the trust files of the simulator the demo runs on ``port`` (they depend only on
    the seed and the port), without running anything; their directory."""
    layout = Layout(port)
    state, ca = build_state(SimConfig(host=HOST, entries=0, seed=SEED), layout.sim_port)
    write_trust_files(layout.trust_dir, state, ca, layout.sim_url)
    return layout.trust_dir


def _check_free(layout: Layout) -> None:
    """Fail early, and clearly, when a port is taken (most often: a demo already running)."""
    for port, what in (
        (layout.port, "the API"),
        (layout.sim_port, "the simulator"),
        (layout.receiver_port, "the receiver"),
    ):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                raise ConfigError(
                    f"port {port} (for {what}) is in use: is a demo already running? "
                    f"--port P runs on P, P+1 and P+2 instead of {layout.port}-"
                    f"{layout.receiver_port}"
                ) from None


def _on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT or SIGTERM; after the first, the default handlers are back (a
    second Ctrl-C interrupts). Returns the function that removes the handlers."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def remove() -> None:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    def stopping() -> None:
        stop.set()
        remove()

    for sig in signals:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping)
    return remove


async def run_demo(options: DemoOptions, emit: Callable[[str], None]) -> None:
    stop = asyncio.Event()
    remove_handlers = _on_signals(stop)
    try:
        layout = Layout(options.port)
        _check_free(layout)
        layout.fresh()
        sim = await start(
            SimConfig(
                host=HOST,
                port=layout.sim_port,
                entries=options.entries,
                seed=SEED,
                rate=options.rate,
            ),
            out=layout.trust_dir,
        )
        try:
            await _with_sim(options, layout, sim, stop, emit)
        finally:
            await sim.stop()
    finally:
        remove_handlers()


async def _with_sim(
    options: DemoOptions,
    layout: Layout,
    sim: RunningSim,
    stop: asyncio.Event,
    emit: Callable[[str], None],
) -> None:
    config = layout.config_for(options.config)
    checked = await asyncio.to_thread(load_checked, str(config))
    secrets = layout.check(checked.settings, options.config)
    receiver = AlertReceiver(secrets, emit)
    await receiver.start(HOST, layout.receiver_port)
    try:
        async with Monitor.open(str(config)) as monitor:
            if not stop.is_set():  # a Ctrl-C while starting: no banner for what ends now
                for line in banner(monitor.settings, config, layout, sim.state, options.rate):
                    emit(line)
            planter = Planter(sim.state, emit)
            planting = asyncio.create_task(planter.run(stop), name="demo plants")
            timer = None
            if options.duration is not None:
                timer = asyncio.get_running_loop().call_later(options.duration, stop.set)
            try:
                await monitor.run(stop)
            finally:
                stop.set()
                if timer is not None:
                    timer.cancel()
                await cancel_and_wait([planting])
    finally:
        await receiver.stop()
    emit("")
    emit(
        f"demo stopped: {receiver.findings} alerts shown, every signature checked"
        + (f"; {receiver.rejected} deliveries rejected" if receiver.rejected else "")
        + "."
    )
    emit(f"Findings and history stay in {layout.database}: {command('findings', config)}")
