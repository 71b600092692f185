"""The console in headless Chromium against a running daemon: sign in, filter the queue, open
a finding and acknowledge it, search history by a SAN prefix, open an entry, download its
evidence and verify it offline with ``verify-bundle``; a hostile SAN renders inert. Every
page is screenshotted, and anything the browser logs as an error (a failed load, a script
error, a Content-Security-Policy violation) fails the test.

One browser and one daemon serve the whole module."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from monitor.console import PREFIX
from tests.api_support import ADMIN_TOKEN, READ_TOKEN
from tests.console_browser import (
    HOSTILE_SAN,
    MALLORY_AT,
    WITNESSES,
    LiveDaemon,
    chrome,
    console_problems,
    live_daemon,
    screenshot_dir,
    tlog_monitor,
)
from tests.simlog import admin


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    with live_daemon(tmp_path_factory.mktemp("console-live")) as d:
        yield d


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path, daemon: LiveDaemon) -> Iterator[webdriver.Chrome]:
    with chrome(downloads) as b:
        yield b


@pytest.fixture(scope="module")
def shots() -> Path:
    return screenshot_dir()


class Console:
    """The browser on the console: each page loaded is checked for errors and kept as a
    screenshot."""

    def __init__(
        self, browser: webdriver.Chrome, daemon: LiveDaemon, shots: Path, downloads: Path
    ) -> None:
        self.b = browser
        self.base = daemon.url
        self.shots = shots
        self.downloads = downloads

    def open(self, path: str) -> None:
        self.b.get(self.base + path)

    def settled(self, name: str) -> None:
        """The page loaded cleanly; its screenshot saved as ``name``.png."""
        problems = console_problems(self.b)
        self.b.save_screenshot(str(self.shots / f"{name}.png"))
        assert problems == [], problems

    def sign_in(self, token: str) -> None:
        self.b.delete_all_cookies()
        self.open(f"{PREFIX}/findings")
        assert urlsplit(self.b.current_url).path == f"{PREFIX}/signin"
        self.settled("signin")
        self.b.find_element(By.ID, "token").send_keys(token)
        self.b.find_element(By.CSS_SELECTOR, "section.signin button").click()
        # the click posts the form; the redirect that follows may land after click() returns
        _wait(lambda: urlsplit(self.b.current_url).path == f"{PREFIX}/findings")

    def text(self, css: str) -> list[str]:
        return [e.text for e in self.b.find_elements(By.CSS_SELECTOR, css)]


@pytest.fixture
def ui(browser: webdriver.Chrome, daemon: LiveDaemon, shots: Path, downloads: Path) -> Console:
    console_problems(browser)  # what an earlier test left is its own
    return Console(browser, daemon, shots, downloads)


def test_triage_search_and_evidence(ui: Console, daemon: LiveDaemon) -> None:
    ui.sign_in(ADMIN_TOKEN)
    ui.settled("findings")
    assert set(ui.text("td .sev")) == {"critical", "high", "medium"}
    # filtering: the select submits its form (progressive script), the URL carries the filter
    Select(ui.b.find_element(By.NAME, "severity")).select_by_value("high")
    _wait(lambda: "severity=high" in ui.b.current_url)
    ui.settled("findings-high")
    assert set(ui.text("td .sev")) == {"critical", "high"}
    Select(ui.b.find_element(By.NAME, "rule")).select_by_value("mallory")
    _wait(lambda: "rule=mallory" in ui.b.current_url)
    assert ui.text("td .sev") == ["high", "high"]
    query = parse_qs(urlsplit(ui.b.current_url).query)
    assert query["severity"] == ["high"]
    assert query["rule"] == ["mallory"]

    ui.b.find_element(By.CSS_SELECTOR, "a.finding").click()
    ui.settled("finding")
    assert "mallory@evil.example" in ui.b.page_source
    assert ui.text("h2")[:2] == ["Triage", "Signer"]
    assert "soc" in ui.text("table.list td")  # the configured sink's delivery row
    finding_url = ui.b.current_url
    ui.b.find_element(By.ID, "comment").send_keys("looking into it")
    ui.b.find_element(By.ID, "ack").click()
    # the form posts and comes back to the same address: wait for the new page, not the URL
    _wait(lambda: _shows(ui, "h1 .state", ["acknowledged"]))
    assert ui.b.current_url == finding_url
    ui.settled("finding-acknowledged")
    assert "looking into it" in ui.text("dd.comment")
    finding_id = int(finding_url.rsplit("/", 1)[1])
    stored = daemon.call(daemon.monitor.store.finding(finding_id))
    assert stored is not None
    assert (stored.state_changed_by, stored.comment) == ("oncall", "looking into it")

    ui.open(f"{PREFIX}/history")
    ui.b.find_element(By.NAME, "san").send_keys("mallory@*")
    ui.b.find_element(By.ID, "search").click()
    ui.settled("history")
    links = ui.b.find_elements(By.CSS_SELECTOR, "table.history td a")
    assert sorted(a.text.split("#")[1] for a in links) == ["203", "203"]
    hrefs = sorted(a.get_attribute("href") or "" for a in links)
    next(a for a in links if not a.text.startswith("v1")).click()  # the Rekor v2 shard's
    ui.settled("entry")
    assert "mallory@evil.example" in ui.text("dd.san")
    assert ui.b.current_url in hrefs
    for href in hrefs:  # the evidence of each log's entry: Rekor v1's form and v2's
        ui.b.get(href)
        _verify_download(ui, daemon)

    ui.open(f"{PREFIX}/logs")
    ui.settled("logs")
    assert len(ui.b.find_elements(By.CSS_SELECTOR, "section.log")) >= 2
    # the Rekor v2 log's last checkpoint, with the witnesses that cosigned it, each verified
    cosigners = ui.text("section.log table.list tbody tr")
    assert sorted(row.split()[0] for row in cosigners) == sorted(WITNESSES)
    assert all(row.endswith("verified") for row in cosigners), cosigners
    assert "Verified size" in ui.b.page_source


def _verify_download(ui: Console, daemon: LiveDaemon) -> None:
    """The entry page's evidence downloads, and ``verify-bundle`` verifies it offline."""
    downloads = ui.downloads
    before = set(downloads.glob("*.json"))
    ui.b.find_element(By.ID, "evidence").click()
    _wait(lambda: set(downloads.glob("*.json")) - before != set(), timeout=30)
    (got,) = set(downloads.glob("*.json")) - before
    assert console_problems(ui.b) == []
    result = subprocess.run(
        [
            tlog_monitor(),
            "verify-bundle",
            "--trusted-root",
            str(daemon.trust_dir / "trusted_root.json"),
            "--signing-config",
            str(daemon.trust_dir / "signing_config.json"),
            "--require-proof",
            "--jsonl",
            str(got),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert report["status"] == "ok", report
    assert report["entries"][0]["promise_only"] is None  # an inclusion proof, not a promise


def test_a_hostile_san_renders_inert(ui: Console) -> None:
    ui.sign_in(READ_TOKEN)
    ui.open(f"{PREFIX}/findings?rule=hostile")
    ui.settled("findings-hostile")
    ui.b.find_element(By.CSS_SELECTOR, "a.finding").click()
    ui.settled("finding-hostile")
    assert ui.b.execute_script("return window.pwned === undefined")
    # the markup is text: no element came of it, every script is the console's own file
    assert ui.b.find_elements(By.CSS_SELECTOR, "main img") == []
    sources = [s.get_attribute("src") or "" for s in ui.b.find_elements(By.TAG_NAME, "script")]
    assert len(sources) == 1
    assert f"{PREFIX}/static/console.js" in sources[0]
    sans = ui.text("dd.san")
    assert any("<script>window.pwned=1</script>" in s for s in sans), sans
    # the override is shown as its escape, not obeyed
    assert all("\u202e" not in s for s in sans)
    assert "\\u202e" in ui.text(".ctl")
    assert "\u202e" not in ui.b.find_element(By.TAG_NAME, "body").text
    assert any(HOSTILE_SAN.split("\u202e")[0] in s for s in sans)


def test_a_csp_violation_is_caught(ui: Console) -> None:
    """The check the other tests rely on can fail: inline script a page would carry is
    refused by the policy, and the refusal is in the browser's log."""
    ui.sign_in(READ_TOKEN)
    ui.b.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.appendChild(s);"
    )
    time.sleep(0.2)
    assert ui.b.execute_script("return window.ran === undefined")
    problems = console_problems(ui.b)
    assert any("Content Security Policy" in p for p in problems), problems


def test_evidence_a_log_cannot_prove_is_not_served(daemon: LiveDaemon) -> None:
    """The Rekor v1 log now serves another body at a stored entry's index: the evidence file
    is refused (a 502 saying why), never served unverified."""

    async def body() -> tuple[int, str]:
        async with aiohttp.ClientSession() as s:
            await admin(s, daemon.sim_url, "faults", {"tamper": [MALLORY_AT]})
            try:
                base = f"{daemon.url}{PREFIX}"
                async with s.post(
                    f"{base}/signin",
                    data={"token": READ_TOKEN},
                    headers={"Origin": daemon.url},
                    allow_redirects=False,
                ) as resp:
                    cookie = resp.headers["Set-Cookie"].split(";")[0]
                async with s.get(
                    f"{base}/entries/v1/{MALLORY_AT}/evidence", headers={"Cookie": cookie}
                ) as resp:
                    return resp.status, await resp.text()
            finally:
                await admin(s, daemon.sim_url, "faults", {"tamper": []})

    status, page = daemon.call(body())
    assert status == 502, page
    assert "not the body stored" in page


def _shows(ui: Console, css: str, texts: list[str]) -> bool:
    """Whether the page shows ``texts`` at ``css``; False while a new page replaces it (an
    element read as it goes is stale, or "does not belong to the document")."""
    try:
        return ui.text(css) == texts
    except WebDriverException:
        return False


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
