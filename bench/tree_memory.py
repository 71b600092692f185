"""The resident memory and CPU time of a process tree, read from ``/proc`` (Linux)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # of utime and stime in /proc/<pid>/stat


def proc_stat(stat: str) -> tuple[int, float]:
    """The parent's pid and the user + system CPU seconds in the text of ``/proc/<pid>/stat``
    (split after the command name, which may hold spaces and parentheses)."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class TreeMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants (worker processes,
    if the monitor starts any): the peak of their sum, and the most processes seen at once.
    ``wait4`` alone gives only the largest single process."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.max_procs = 0
        self.cpu: dict[int, float] = {}  # CPU seconds of each process, as last seen
        self.own_peak_kb = 0  # the monitor's own process alone
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue  # gone meanwhile
                parents[int(d.name)], cpu[int(d.name)] = proc_stat(stat)
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(kids)
            frontier += kids
        total = 0
        for pid in tree:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            kb = int(m.group(1)) if m else 0
            total += kb
            if pid == self.pid:
                self.own_peak_kb = max(self.own_peak_kb, kb)
        self.peak_kb = max(self.peak_kb, total)
        self.max_procs = max(self.max_procs, len(tree))
        for pid in tree:
            if pid in cpu:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu[pid])

    def main_share(self) -> tuple[float, float]:
        """CPU seconds of the monitor's own process and of its children (its parse workers),
        as last sampled: up to a sampling interval short of the whole."""
        own = self.cpu.get(self.pid, 0.0)
        return own, sum(v for pid, v in self.cpu.items() if pid != self.pid)
