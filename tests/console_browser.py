"""The console in a real browser: Debian's headless ``chromium`` driven through its
``chromedriver`` by Selenium (nothing downloaded: both are the system's), against a real
daemon tailing the simulator, served from a thread of its own.

Without chromium or chromedriver the browser tests are skipped locally, but FAIL when ``CI``
is set: CI must run them. Screenshots go to ``$TLOG_MONITOR_SCREENSHOTS`` or, without it, to
``.artifacts/console-screenshots`` in the repository (ignored by git); the session's summary
prints where (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from monitor.daemon.service import Monitor
from tests.api_support import ADMIN_TOKEN, TOKENS
from tests.conftest import screenshot_path
from tests.daemon_support import ARTIFACT, MALLORY, write_config
from tests.simlog import harness

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# what a hostile signer writes into its certificate: markup that would run, and a
# bidirectional override that would show "exe.txt" reversed as the end of the name
HOSTILE_SAN = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">\u202egpj.exe'
HOSTILE_DIGEST = "ef" * 32
HOSTILE_AT, MALLORY_AT, ARTIFACT_AT = 205, 203, 220
WITNESSES = ("witness-a.sim.example", "witness-b.sim.example", "witness-c.sim.example")
RULES: list[dict[str, Any]] = [
    {"name": "mallory", "match": {"san": "mallory@evil.example"}, "severity": "high"},
    {"name": "artifact", "match": {"digest": f"sha256:{ARTIFACT}"}, "severity": "medium"},
    {"name": "hostile", "match": {"digest": f"sha256:{HOSTILE_DIGEST}"}, "severity": "critical"},
]


def browser_programs() -> tuple[str, str]:
    """The chromium and chromedriver to use; skips without them (fails under CI)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian's chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests", pytrace=False)
        pytest.skip(message)
    return CHROMIUM, CHROMEDRIVER


def screenshot_dir() -> Path:
    path = screenshot_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chrome(downloads: Path) -> Iterator[webdriver.Chrome]:
    binary, driver = browser_programs()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root, in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1366,900",  # a laptop's screen
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        browser.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield browser
    finally:
        browser.quit()


def console_problems(browser: webdriver.Chrome) -> list[str]:
    """What the browser logged as an error since the last call: console errors, failed
    loads, Content-Security-Policy violations."""
    return [
        str(e.get("message"))
        for e in browser.get_log("browser")  # type: ignore[no-untyped-call]
        if e.get("level") == "SEVERE" or "Content Security Policy" in str(e.get("message"))
    ]


@dataclass
class LiveDaemon:
    """A daemon running in a thread with its own event loop; ``call`` runs a coroutine there."""

    url: str  # the API's base URL; the console is under /ui/
    sim_url: str  # the simulator's, for its /admin endpoints
    trust_dir: Path  # the simulator's trusted_root.json and signing_config.json
    monitor: Monitor
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def _until(session: aiohttp.ClientSession, url: str, wanted: int, timeout: float) -> None:
    """Until the daemon has stored ``wanted`` open findings (both logs passed the plants)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    while True:
        async with session.get(f"{url}/api/v1/findings", headers=headers) as resp:
            doc = await resp.json() if resp.status == 200 else {"items": []}
        if len(doc["items"]) >= wanted:
            return
        assert time.monotonic() < deadline, doc
        await asyncio.sleep(0.2)


@contextmanager
def live_daemon(tmp: Path) -> Iterator[LiveDaemon]:
    """The simulator (two logs: Rekor v1 and v2) with planted entries, and a daemon tailing
    it from index 0 with the API tokens of ``tests.api_support``, serving the console."""
    started: Future[LiveDaemon] = Future()
    stopping = threading.Event()
    url = f"sqlite+aiosqlite:///{tmp / 'console.db'}"

    async def main() -> None:
        async with harness(tmp, entries=200, shards=2) as h:
            await h.admin("plant", {"index": MALLORY_AT, "identity": MALLORY})
            hostile = {"username": HOSTILE_SAN, "issuer": "https://evil.example/\u202eoidc"}
            await h.admin(
                "plant", {"index": HOSTILE_AT, "identity": hostile, "digest": HOSTILE_DIGEST}
            )
            await h.admin("plant", {"index": ARTIFACT_AT, "digest": ARTIFACT})
            await h.admin("append", {"v1": 50, "v2": 50})
            cfg = write_config(
                tmp / "console.yaml",
                h.sim,
                tmp,
                url,
                v1={"start": 0},
                v2={"start": 0},
                rules=RULES,
                server={"tokens": TOKENS},
            )
            # the simulator's witnesses cosign each Rekor v2 checkpoint: the logs page shows them
            doc = yaml.safe_load(cfg.read_text())
            policy = str(tmp / "witness-policy.txt")
            doc["logs"][1]["witnesses"] = {"policy": policy, "mode": "warn"}
            cfg.write_text(yaml.safe_dump(doc))
            async with Monitor.open(str(cfg)) as m, aiohttp.ClientSession() as session:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                while m.api is None or m.api.url is None:
                    await asyncio.sleep(0.05)
                await _until(session, m.api.url, 6, 120)  # three plants in each of two logs
                started.set_result(
                    LiveDaemon(m.api.url, h.sim.base_url, tmp, m, asyncio.get_running_loop())
                )
                await asyncio.to_thread(stopping.wait)
                stop.set()
                await asyncio.wait_for(task, 30)

    def thread() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # reported to the test, not lost in the thread
            if not started.done():
                started.set_exception(e)
            raise

    worker = threading.Thread(target=thread, name="console-daemon", daemon=True)
    worker.start()
    try:
        yield started.result(180)
    finally:
        stopping.set()
        worker.join(60)


def tlog_monitor() -> str:
    """The installed command line of this environment."""
    found = shutil.which("tlog-monitor", path=str(Path(sys.executable).parent))
    assert found is not None
    return found
