"""The simulator (``tlog-monitor sim``) in a process of its own, for the daemon's benchmark."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bench.tree_memory import proc_stat

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """Something crashed: the benchmark cannot report."""


class Sim:
    """``tlog-monitor sim`` in its own process."""

    def __init__(self, entries: int, out: Path, log: IO[str], env: dict[str, str]) -> None:
        self.out = out
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable, "-m", "monitor.cli.main", "sim", "--listen", "127.0.0.1:0",
                "--entries", str(entries), "--out", str(out),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        url = None
        for line in self.proc.stdout:
            m = re.match(r"simulator: (http://\S+) ", line)
            if m:
                url = m.group(1)
            if line.startswith("trust files:"):
                break
        if url is None or self.proc.poll() is not None:
            self.stop()
            raise BenchError(f"the simulator did not start (see {log.name})")
        self.base_url = url
        self.start_seconds = time.perf_counter() - t0
        self.v1_size = self.v2_size = entries

    def append_v2(self, count: int) -> float:
        """Grow the v2 log by ``count`` entries; seconds it took."""
        t0 = time.perf_counter()
        req = urllib.request.Request(  # noqa: S310 - http to our own simulator
            f"{self.base_url}/admin/append",
            data=json.dumps({"v2": count}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310
            state = json.load(resp)
        self.v2_size = int(state["v2"][-1]["size"])
        return time.perf_counter() - t0

    def cpu_seconds(self) -> float:
        """User + system CPU the simulator has used so far."""
        return proc_stat(Path(f"/proc/{self.proc.pid}/stat").read_text())[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def running_sim(entries: int, out: Path, log: IO[str], env: dict[str, str]) -> Iterator[Sim]:
    sim = Sim(entries, out, log, env)
    try:
        yield sim
    finally:
        sim.stop()


def child_env(work: Path) -> dict[str, str]:
    """The environment of the simulator and the monitor: bytecode is cached (in ``work``, not
    in the source tree), as it is where the monitor is installed, so that a run does not
    compile every module it imports again."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env
