"""What a log may send, at most, and how the client refuses the rest: real aiohttp servers on
loopback (one over TLS) answer what no honest log sends, and the client names the problem in
one ``LogResponseError`` (a ``MonitorError``: a line in the log, not a traceback), reading no
more than what was asked can hold."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config.models import LogSettings
from monitor.core.encoding import b64encode
from monitor.core.errors import CheckpointError, LogResponseError
from monitor.core.metrics import ClientMetrics
from monitor.logclient.decode import decode_json
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.limits import (
    MAX_LOG_SIZE,
    base64_length,
    v1_batch_answer,
    v1_entry_answer,
)
from monitor.logclient.policy import policy_for
from monitor.logclient.v1 import RekorV1Client
from monitor.logclient.v2 import RekorV2Client
from tests.simlog import FAST, harness, run

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(
    routes: Mapping[str, Handler], ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """An aiohttp server on loopback answering ``routes`` (GET and POST); its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def chunked(request: web.Request, data: bytes) -> web.StreamResponse:
    """``data`` without a length: the client must count what it reads."""
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        for at in range(0, len(data), 1 << 16):
            await resp.write(data[at : at + (1 << 16)])
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client hung up: refused, as it should
    return resp


def http_for(base: str, session: aiohttp.ClientSession, **policy: object) -> LogHttp:
    fields = {**FAST.__dict__, **policy}
    return LogHttp(
        base,
        session,
        log="hostile",
        metrics=ClientMetrics.standalone(),
        policy=HttpPolicy(**fields),
    )


# --- decoding -----------------------------------------------------------------------------


def test_json_values_are_counted_before_anything_is_built() -> None:
    async def body() -> None:
        assert await decode_json(b'[{"a": [1, 2]}, "x,y"]', 16, "answer") == [
            {"a": [1, 2]},
            "x,y",
        ]
        for hostile in (b"[" + b"[]," * 10_000 + b"[]]", b"[" * 5000 + b"]" * 5000):
            with pytest.raises(LogResponseError, match=r"more than the 100 that what was asked"):
                await decode_json(hostile, 100, "answer")
        with pytest.raises(LogResponseError, match="is not JSON"):
            await decode_json(b"[1, 2", 100, "answer")
        with pytest.raises(LogResponseError, match="is not JSON"):
            await decode_json(b"\xff\xfe", 100, "answer")

    run(body)


# --- HTTP -----------------------------------------------------------------------------------


def test_an_answer_is_refused_as_it_is_read_at_the_cap_of_the_request() -> None:
    big = b"x" * (3 << 20)

    async def stream(request: web.Request) -> web.StreamResponse:
        return await chunked(request, big)

    async def sized(_: web.Request) -> web.Response:
        return web.Response(body=big)

    async def body() -> None:
        routes = {"/stream": stream, "/sized": sized}
        async with serving(routes) as base, aiohttp.ClientSession() as session:
            http = http_for(base, session)
            with pytest.raises(LogResponseError, match="exceeds 65536 bytes"):  # counted
                await http.get("stream", max_bytes=1 << 16)
            with pytest.raises(LogResponseError, match=f"response of {len(big)} bytes exceeds"):
                await http.get("sized", max_bytes=1 << 16)
            assert (await http.get("sized", max_bytes=len(big))).body == big

    run(body)


def test_a_header_over_8_kb_is_a_malformed_answer_not_a_crash() -> None:
    async def padded(_: web.Request) -> web.Response:
        return web.Response(text="{}", headers={"X-Padding": "a" * 20_000})

    async def many(_: web.Request) -> web.Response:
        return web.Response(text="{}", headers={f"X-{i}": "a" for i in range(500)})

    async def body() -> None:
        routes = {"/padded": padded, "/many": many}
        async with serving(routes) as base, aiohttp.ClientSession() as session:
            http = http_for(base, session)
            for path in ("padded", "many"):
                with pytest.raises(LogResponseError, match="malformed HTTP answer to GET"):
                    await http.get(path)

    run(body)


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for 127.0.0.1 and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_a_redirect_from_https_to_http_on_the_same_host_is_refused(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    asked: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.path)
        if request.path == "/down":  # the same host and port, without TLS
            raise web.HTTPFound(str(request.url.with_scheme("http").with_path("/log")))
        if request.path == "/same":  # within the log's host, over TLS: followed
            raise web.HTTPFound("/log")
        return web.json_response({"ok": True})

    async def body() -> None:
        routes = {"/down": answer, "/same": answer, "/log": answer}
        async with serving(routes, server_ctx) as base:
            connector = aiohttp.TCPConnector(ssl=client_ctx)
            async with aiohttp.ClientSession(connector=connector) as session:
                http = http_for(base, session)
                assert json.loads((await http.get("same")).body) == {"ok": True}
                with pytest.raises(LogResponseError, match="refused a redirect from https to http"):
                    await http.get("down")
        assert asked == ["/same", "/log", "/down"]  # nothing was asked over plain http

    run(body)


# --- Rekor v1 --------------------------------------------------------------------------------


def test_v1_answers_beyond_what_was_asked_are_refused(tmp_path: Path) -> None:
    """More entries than asked, an entry over ``max_entry_bytes``, a batch answer over the cap
    of ten entries: each a ``LogResponseError`` naming what is wrong."""

    async def body() -> None:
        async with harness(tmp_path, entries=40, shards=1) as h:
            log = h.v1.log
            real = await h.v1.entries(range(10))
            doc = json.loads(
                await (
                    await h.session.post(
                        f"{h.sim.base_url}/api/v1/log/entries/retrieve", json={"logIndexes": [3]}
                    )
                ).read()
            )[0]
            inner = next(iter(doc.values()))
            answers: list[bytes] = []

            async def retrieve(request: web.Request) -> web.StreamResponse:
                return await chunked(request, answers.pop(0))

            async with serving({"/api/v1/log/entries/retrieve": retrieve}) as base:
                http = http_for(base, h.session, max_entry_bytes=4096)
                client = RekorV1Client(http, log)
                extra = [{f"{k:080x}": inner} for k in range(5)]
                answers.append(json.dumps(extra).encode())
                with pytest.raises(LogResponseError, match="5 entries answered"):
                    await client.batch([3])
                big = dict(inner, body=b64encode(b"{" * 5000))
                answers.append(json.dumps([{"k": big}]).encode())
                with pytest.raises(LogResponseError, match=r"takes 6668 characters of base64"):
                    await client.batch([3])
                answers.append(b"[" + b'"' + b"a" * v1_batch_answer(1, 4096) + b'"]')
                with pytest.raises(LogResponseError, match="exceeds"):
                    await client.batch([3])
            assert real[3].body == base64.b64decode(inner["body"])  # what was sent, as served

    run(body)


def test_v1_caps_follow_the_entry_size() -> None:
    assert base64_length(1 << 20) == 1_398_104
    assert v1_entry_answer(1 << 20) == 1_398_104 + (64 << 10)
    assert v1_batch_answer(10, 1 << 20) == 2 + 10 * (v1_entry_answer(1 << 20) + 1)
    assert v1_batch_answer(10, 1 << 20) < 15 << 20  # well under the 32 MiB of any answer


def test_tree_heads_of_absurd_sizes_are_refused_after_their_signature(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=40, shards=1) as h:
            v2 = h.sim.state.v2
            absurd = v2.signer.sign_checkpoint(v2.origin, MAX_LOG_SIZE + 1, b"\x01" * 32)
            ok = v2.signer.sign_checkpoint(v2.origin, MAX_LOG_SIZE, b"\x01" * 32)
            notes = [ok, absurd]

            async def checkpoint(_: web.Request) -> web.Response:
                return web.Response(text=notes.pop(0))

            async with serving({"/checkpoint": checkpoint}) as base:
                client = RekorV2Client(http_for(base, h.session), h.v2.log)
                assert (await client.checkpoint()).size == MAX_LOG_SIZE
                with pytest.raises(CheckpointError) as caught:
                    await client.checkpoint()
                assert caught.value.check == "checkpoint-size"
                assert caught.value.raw == absurd  # the signed note, kept as evidence

    run(body)


def test_v2_tiles_and_bundles_are_capped_at_their_width(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1) as h:

            async def tile(request: web.Request) -> web.StreamResponse:
                return await chunked(request, b"\x00" * (1 << 20))

            async with serving({"/tile/{rest:.*}": tile}) as base:
                client = RekorV2Client(http_for(base, h.session), h.v2.log)
                with pytest.raises(LogResponseError, match="exceeds 8192 bytes"):
                    await client.tile(0, 0)
                with pytest.raises(LogResponseError, match="exceeds 1408 bytes"):
                    await client.tile(0, 1, 44)
                with pytest.raises(LogResponseError, match="entry bundle 0 is malformed"):
                    await client.entry_bundle(0)

    run(body)


def test_the_log_settings_are_the_clients_policy() -> None:
    default = LogSettings(name="x", api="v1", url="https://rekor.sigstore.dev")
    assert policy_for(default) == HttpPolicy()  # the defaults agree
    tuned = LogSettings(
        name="x",
        api="v2",
        url="https://log.example",
        requests_per_second=3,
        burst=2,
        max_concurrency=9,
        timeout=timedelta(seconds=7),
        max_entry_bytes=1 << 17,
        memory_budget_bytes=1 << 25,
        missing_after=timedelta(seconds=90),
    )
    assert policy_for(tuned) == HttpPolicy(
        requests_per_second=3,
        burst=2,
        max_concurrency=9,
        timeout_seconds=7,
        max_entry_bytes=1 << 17,
        memory_budget_bytes=1 << 25,
        missing_after_seconds=90,
    )
