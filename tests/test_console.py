"""The console over real HTTP on loopback, without a browser: signing in and out, the cookie's
flags, the security headers, CSRF and Origin refusals, scopes, escaping of what a log wrote,
and every page rendering from a database a real pass over the simulator filled."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.console import PREFIX, console_app
from monitor.console.render import STATIC_FILES, environment, static_file, visible
from monitor.core.findings import (
    Finding,
    FindingImage,
    FindingKind,
    FindingState,
    Severity,
    dedup_key,
)
from monitor.storage import FindingQuery, ImageDigestRecord, ImageScanRecord, ImageSignatureRecord
from tests.api_support import (
    ADMIN_TOKEN,
    READ_TOKEN,
    WRITE_TOKEN,
    Client,
    Filled,
    fill,
    served,
)
from tests.simlog import run
from tests.storage_support import T0

UI = f"{PREFIX}/"


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    tmp = tmp_path_factory.mktemp("console")
    return run(lambda: fill(tmp, f"sqlite+aiosqlite:///{tmp / 'console.db'}"))


@asynccontextmanager
async def console(filled: Filled) -> AsyncIterator[Client]:
    async with served(filled.url, mounts={UI: console_app}) as c:
        yield c


class Browser:
    """Requests as a browser sends them: the cookie it was given, its own Origin."""

    def __init__(self, c: Client) -> None:
        self.c = c
        self.cookie: str | None = None
        self.origin = c.base

    async def request(
        self, method: str, path: str, *, data: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, str, Any]:
        h = dict(headers)
        if self.cookie is not None:
            h.setdefault("Cookie", f"tlog_monitor_console={self.cookie}")
        if method == "POST":
            h.setdefault("Origin", self.origin)
        async with self.c.session.request(
            method, self.c.base + path, data=data, headers=h, allow_redirects=False
        ) as resp:
            return resp.status, await resp.text(), resp.headers

    async def sign_in(self, token: str) -> Any:
        status, _body, headers = await self.request(
            "POST", f"{PREFIX}/signin", data={"token": token, "next": f"{PREFIX}/logs"}
        )
        assert status == 303, _body
        assert headers["Location"] == f"{PREFIX}/logs"
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(headers["Set-Cookie"])
        self.cookie = cookie["tlog_monitor_console"].value
        return cookie["tlog_monitor_console"]

    async def csrf(self, path: str) -> str:
        status, body, _ = await self.request("GET", path)
        assert status == 200, body
        found = re.search(r'name="csrf" value="([0-9a-f]{64})"', body)
        assert found is not None, body
        return found.group(1)


def check(filled: Filled, body: Callable[[Browser], Awaitable[None]]) -> None:
    async def go() -> None:
        async with console(filled) as c:
            await body(Browser(c))

    run(go)


def test_pages_need_a_session_and_sign_in_sets_a_strict_cookie(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        status, _, headers = await b.request("GET", f"{PREFIX}/findings?state=any&severity=high")
        assert status == 303
        location = urlsplit(headers["Location"])
        assert location.path == f"{PREFIX}/signin"
        assert parse_qs(location.query) == {"next": [f"{PREFIX}/findings?state=any&severity=high"]}
        # the sign-in form takes the whole page back, its filters included
        _, page, _ = await b.request("GET", headers["Location"])
        assert f'name="next" value="{PREFIX}/findings?state=any&amp;severity=high"' in page
        # a bearer header is not a session: the console reads only its cookie
        status, _, _ = await b.request(
            "GET", f"{PREFIX}/logs", Authorization=f"Bearer {READ_TOKEN}"
        )
        assert status == 303
        status, page, _ = await b.request(
            "POST", f"{PREFIX}/signin", data={"token": "tlm_wrong", "next": f"{PREFIX}/logs"}
        )
        assert status == 401
        assert "Unknown token." in page
        morsel = await b.sign_in(READ_TOKEN)
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert morsel["path"] == UI
        assert not morsel["secure"]  # plain HTTP here; Secure under TLS
        assert READ_TOKEN not in morsel.value  # encoded, not as typed
        status, page, headers = await b.request("GET", f"{PREFIX}/logs")
        assert status == 200, page
        assert "reader" in page
        # behind a proxy that terminates TLS and says so, the cookie is Secure
        for header in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "for=10.0.0.1;proto=https"}):
            _, _, headers = await b.request(
                "POST", f"{PREFIX}/signin", data={"token": READ_TOKEN}, **header
            )
            proxied: SimpleCookie = SimpleCookie()
            proxied.load(headers["Set-Cookie"])
            assert proxied["tlog_monitor_console"]["secure"] is True
        # a page of another site is never where signing in leads
        status, _, headers = await b.request(
            "POST", f"{PREFIX}/signin", data={"token": READ_TOKEN, "next": "//evil.example/x"}
        )
        assert headers["Location"] == f"{PREFIX}/findings"

    check(filled, body)


def test_every_answer_carries_a_strict_policy(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        await b.sign_in(READ_TOKEN)
        for path in ("/findings", "/history?san=mallory*", "/logs", "/signin", "/nowhere"):
            _status, page, headers = await b.request("GET", PREFIX + path)
            csp = headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp
            assert "script-src 'self'" in csp
            assert "style-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "same-origin"
            # nothing inline for the policy to forbid
            assert "<style" not in page
            assert "style=" not in page
            assert not re.search(r"<script(?![^>]*\bsrc=)", page)
            assert not re.search(r"\son[a-z]+=", page)
        status, _css, headers = await b.request("GET", f"{PREFIX}/static/console.css")
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")
        status, _, _ = await b.request("GET", f"{PREFIX}/static/..%2Fapp.py")
        assert status == 404

    check(filled, body)


def test_changes_need_the_session_csrf_token_and_this_origin(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        await b.sign_in(ADMIN_TOKEN)
        found = await b.c.store.findings(_open_query())
        fid = found.items[0].finding.id
        assert fid is not None
        page = f"{PREFIX}/findings/{fid}"
        token = await b.csrf(page)
        ack = f"{page}/ack"
        refusals = [
            ({"comment": "x"}, {}),  # no token
            ({"comment": "x", "csrf": "0" * 64}, {}),  # another token
            ({"comment": "x", "csrf": token}, {"Origin": "http://evil.example"}),
            ({"comment": "x", "csrf": token}, {"Origin": "null"}),
        ]
        for data, headers in refusals:
            status, text, _ = await b.request("POST", ack, data=data, **headers)
            assert status == 403, (data, headers, text)
            assert "Refused" in text
        unchanged = await b.c.store.finding(fid)
        assert unchanged is not None
        assert unchanged.finding.state is FindingState.OPEN
        # another session's token is not this one's (a new sign-in, a new nonce)
        other = Browser(b.c)
        await other.sign_in(ADMIN_TOKEN)
        other_token = await other.csrf(page)
        assert other_token != token
        status, _, _ = await b.request("POST", ack, data={"csrf": other_token})
        assert status == 403
        status, _, headers = await b.request(
            "POST", ack, data={"csrf": token, "comment": "on it <b>now</b>"}
        )
        assert status == 303
        assert headers["Location"] == page
        stored = await b.c.store.finding(fid)
        assert stored is not None
        assert stored.finding.state is FindingState.ACKNOWLEDGED
        assert stored.state_changed_by == "oncall"
        assert stored.comment == "on it <b>now</b>"
        _, shown, _ = await b.request("GET", page)
        assert "on it &lt;b&gt;now&lt;/b&gt;" in shown
        # resolved, with a comment; resolving again is a conflict, said on a page
        resolve = f"{page}/resolve"
        status, _, _ = await b.request("POST", resolve, data={"csrf": token, "comment": "fixed"})
        assert status == 303
        stored = await b.c.store.finding(fid)
        assert stored is not None
        assert stored.finding.state is FindingState.RESOLVED
        assert stored.comment == "fixed"
        _, shown, _ = await b.request("GET", page)
        assert 'id="resolve"' not in shown  # no triage of a resolved finding
        status, shown, _ = await b.request("POST", resolve, data={"csrf": token})
        assert status == 409
        assert "resolved already" in shown
        status, _, _ = await b.request(
            "POST", f"{PREFIX}/findings/999999/ack", data={"csrf": token}
        )
        assert status == 404
        # signing out needs the token too, then the cookie is gone
        status, _, _ = await b.request("POST", f"{PREFIX}/signout", data={})
        assert status == 403
        status, _, headers = await b.request("POST", f"{PREFIX}/signout", data={"csrf": token})
        assert status == 303
        assert "Max-Age=0" in headers["Set-Cookie"]

    check(filled, body)


def test_scopes_are_the_api_tokens_scopes(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        await b.sign_in(READ_TOKEN)
        found = await b.c.store.findings(_open_query())
        fid = found.items[-1].finding.id
        page = f"{PREFIX}/findings/{fid}"
        token = await b.csrf(page)
        _, text, _ = await b.request("GET", page)
        assert 'id="ack"' not in text  # no triage form without the write scope
        status, _, _ = await b.request("POST", f"{page}/ack", data={"csrf": token})
        assert status == 403
        writer = Browser(b.c)
        await writer.sign_in(WRITE_TOKEN)
        status, _, _ = await writer.request("GET", page)
        assert status == 403  # write alone reads nothing

    check(filled, body)


def test_log_text_is_escaped_and_invisible_characters_shown() -> None:
    hostile = '<script>alert(1)</script>"\u202egpj.exe\u2066\x1b[31m\n'
    shown = str(visible(hostile))
    assert "<script>" not in shown
    assert "&lt;script&gt;" in shown
    assert "&#34;" in shown
    for raw in ("\u202e", "\u2066", "\x1b", "\n"):
        assert raw not in shown
    for esc in ("\\u202e", "\\u2066", "\\x1b", "\\n"):
        assert f'<span class="ctl">{esc}</span>' in shown


def test_pages_render_and_bad_filters_are_named(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        await b.sign_in(READ_TOKEN)
        status, page, _ = await b.request("GET", f"{PREFIX}/findings?state=any&severity=high")
        assert status == 200
        assert "mallory" in page
        # paging: the next page keeps the filters and shows the next findings
        seen: list[str] = []
        path = f"{PREFIX}/findings?state=any&limit=2"
        while path:
            status, page, _ = await b.request("GET", path)
            assert status == 200
            ids = re.findall(r'class="finding" href="/ui/findings/(\d+)"', page)
            assert 0 < len(ids) <= 2
            seen += ids
            more = re.search(r'rel="next" href="([^"]+)"', page)
            path = html.unescape(more.group(1)) if more else ""
            assert not more or "state=any" in path
        found = await b.c.store.findings(FindingQuery(limit=500))
        assert sorted(seen) == sorted(str(f.finding.id) for f in found.items)
        status, page, _ = await b.request("GET", f"{PREFIX}/findings?severity=dire")
        assert status == 400
        assert "unknown severity" in page
        status, page, _ = await b.request("GET", f"{PREFIX}/history?san=mallory*")
        assert status == 200
        links = re.findall(r'href="/ui/entries/([^/"]+)/(\d+)"', page)
        assert len(links) == 6, page
        log, index = links[0]
        status, page, _ = await b.request("GET", f"{PREFIX}/entries/{log}/{index}")
        assert status == 200, page
        assert "mallory@evil.example" in page
        assert "Raw body" in page
        status, page, _ = await b.request("GET", f"{PREFIX}/history?from_index=9&to_index=3")
        assert status == 400
        assert "to_index" in page
        status, page, _ = await b.request(
            "GET", f"{PREFIX}/history?ext_name=source-repository-owner-uri&ext_value=x"
        )
        assert status == 200
        assert "No entries match." in page
        status, page, _ = await b.request("GET", f"{PREFIX}/entries/scratch/7")
        assert status == 200
        assert "could not be parsed" in page
        status, page, _ = await b.request("GET", f"{PREFIX}/entries/scratch/8")
        assert status == 404
        # evidence comes from a running daemon's logs only
        status, page, _ = await b.request("GET", f"{PREFIX}/entries/{log}/{index}/evidence")
        assert status == 404
        status, page, _ = await b.request("GET", f"{PREFIX}/logs")
        assert status == 200
        assert "Verified size" in page
        # counted by route template, never by the raw path a client chose
        status, metrics = await b.c.get("/metrics")
        assert status == 200
        assert 'route="/ui/entries/{log}/{index}"' in metrics
        assert f'route="/ui/entries/{log}' not in metrics

    check(filled, body)


def test_the_queue_is_by_severity_and_an_image_finding_shows_its_image(filled: Filled) -> None:
    async def body(b: Browser) -> None:
        image = FindingImage("ghcr.io/acme/app", "v1<script>\u202e", "sha256:" + "ab" * 32)
        f = Finding(
            kind=FindingKind.UNSIGNED_IMAGE,
            severity=Severity.CRITICAL,
            dedup_key=dedup_key("console-image-test"),
            detail="no signature",
            image=image,
        )
        await b.c.store.store_findings([f])
        await b.sign_in(READ_TOKEN)
        status, page, _ = await b.request("GET", f"{PREFIX}/findings")
        assert status == 200
        severities = re.findall(r'<td><span class="sev sev-(\w+)"', page)
        rank = ["info", "low", "medium", "high", "critical"]
        assert severities
        assert severities == sorted(severities, key=lambda x: -rank.index(x))
        assert "ghcr.io/acme/app:v1&lt;script&gt;" in page
        stored = await b.c.store.finding_by_key(f.dedup_key)
        assert stored is not None
        status, page, _ = await b.request("GET", f"{PREFIX}/findings/{stored.finding.id}")
        assert status == 200
        assert "<script>" not in page
        assert "ghcr.io/acme/app:v1&lt;script&gt;" in page
        assert "@sha256:" + "ab" * 32 in page
        # history by image: an entry a registry signature is tied to
        status, page, _ = await b.request("GET", f"{PREFIX}/history?san=mallory*")
        log, index = re.findall(r'href="/ui/entries/([^/"]+)/(\d+)"', page)[0]
        sig = ImageSignatureRecord(log, int(index), "00" * 32, "signature", "valid")
        digest = ImageDigestRecord("sha256:" + "cd" * 32, "signed", ("v2",), signatures=(sig,))
        await b.c.store.record_image_scan(
            ImageScanRecord("ghcr.io/acme/app", T0, T0, complete=True, digests=(digest,))
        )
        status, page, _ = await b.request("GET", f"{PREFIX}/history?image=ghcr.io/acme/app")
        assert status == 200
        assert re.findall(r'href="/ui/entries/([^/"]+)/(\d+)"', page) == [(log, index)]
        assert "ghcr.io/acme/app:v2" in page

    check(filled, body)


def _open_query() -> FindingQuery:
    return FindingQuery(states=(FindingState.OPEN,), limit=50)


def test_templates_and_static_files_are_package_data() -> None:
    env = environment()
    assert {"findings.html", "entry.html", "logs.html"} <= set(env.list_templates())
    for name in STATIC_FILES:
        assert static_file(name)[0]
