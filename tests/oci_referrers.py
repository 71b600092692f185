"""A small OCI 1.1 registry endpoint for the tests, in memory: what distribution 2.8 lacks (the
referrers API, tag pagination by ``n``/``last`` with ``Link``) and what an honest registry
never does (``mode``: a manifest whose bytes do not match its digest, oversize answers,
pagination that never ends, a next page on another host, a basic-auth challenge)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.registry_support import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass
class OciEndpoint:
    """One repository's content. ``mode``: ``honest``; ``wrong_bytes`` (a manifest by
    digest answered with other bytes), ``wrong_claim`` (a tag's manifest with another
    ``Docker-Content-Digest``), ``huge_manifest``, ``huge_tags``, ``tags_loop`` (``Link`` to
    the same page), ``tags_endless`` (``Link`` to ever new pages), ``off_host`` (``Link``
    elsewhere), ``ignore_filter`` (referrers answered unfiltered), ``cdn`` (blobs redirected to
    another server, which records the ``Authorization`` it is sent), ``flaky`` (each path's
    first request answered 429 with ``Retry-After``), ``evil_realm`` (a token realm over
    plain HTTP off loopback), ``foreign_realm`` (a realm on another host), ``no_api_405``
    (the referrers API refused, as some registries without it do), ``tags_not_strings``,
    ``tags_bad``, ``tags_not_object`` (tag lists of a wrong shape), ``denied`` (403)."""

    mode: str = "honest"
    page_size: int = 2  # referrers per page
    basic: tuple[str, str] | None = None  # required credentials
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    port: int = 0
    cdn_port: int = 0
    cdn_authorization: list[str | None] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def put(self, doc: dict[str, Any], tag: str | None = None) -> tuple[str, bytes]:
        raw = json.dumps(doc).encode()
        digest = digest_of(raw)
        self.manifests[digest] = (raw, doc.get("mediaType", OCI_MANIFEST))
        if tag:
            self.tags[tag] = digest
        return digest, raw

    def blob(self, data: bytes) -> dict[str, Any]:
        self.blobs[digest_of(data)] = data
        return {
            "mediaType": "application/octet-stream",
            "digest": digest_of(data),
            "size": len(data),
        }

    # -- handlers ----------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.basic is None:
            return True
        wanted = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {wanted}"

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.mode == "flaky" and request.path_qs not in self.seen:
            self.seen.add(request.path_qs)
            raise web.HTTPTooManyRequests(headers={"Retry-After": "0"})
        if self.mode == "denied":
            raise web.HTTPForbidden(text="DENIED")
        if self.mode in ("evil_realm", "foreign_realm"):
            realm = "http://realm.example/token"
            if self.mode == "foreign_realm":  # loopback, but another host than the registry's
                realm = f"http://localhost:{self.cdn_port}/token"
            challenge = f'Bearer realm="{realm}",service="x"'
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": challenge})
        if not self._authorized(request):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="oci"'})
        response: web.StreamResponse = await handler(request)
        return response

    async def tag_list(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.mode == "tags_not_strings":
            return web.json_response({"name": name, "tags": ["v1", 2]})
        if self.mode == "tags_bad":
            return web.json_response({"name": name, "tags": ["v1", "-x\u001b[2J"]})
        if self.mode == "tags_not_object":
            return web.json_response(["v1"])
        if self.mode == "huge_tags":
            return web.json_response({"name": name, "tags": [f"t{i}" for i in range(1 << 20)]})
        n = int(request.query.get("n", "1000"))
        last = request.query.get("last", "")
        tags = sorted(t for t in self.tags if t > last)
        page, rest = tags[:n], tags[n:]
        headers = {}
        if self.mode == "tags_loop":
            headers["Link"] = f'</v2/{name}/tags/list?n={n}>; rel="next"'
        elif self.mode == "tags_endless":
            page = [f"{last or 'a'}x"]
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={page[0]}>; rel="next"'
        elif self.mode == "off_host":
            headers["Link"] = '<https://elsewhere.example/v2/x/tags/list?n=1>; rel="next"'
        elif rest:
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return web.json_response({"name": name, "tags": page}, headers=headers)

    async def manifest(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        digest = ref if ":" in ref else self.tags.get(ref)
        if digest is None or digest not in self.manifests:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        raw, media_type = self.manifests[digest]
        claimed = digest
        if self.mode == "wrong_bytes":
            raw = raw.replace(b"}", b" }", 1)
        elif self.mode == "wrong_claim":
            claimed = digest_of(b"another manifest")
        elif self.mode == "huge_manifest":
            raw = raw[:-1] + b', "pad": "' + b"x" * (5 << 20) + b'"}'
        headers = {"Docker-Content-Digest": claimed, "Content-Type": media_type}
        return web.Response(body=raw, headers=headers)

    async def blob_get(self, request: web.Request) -> web.Response:
        if self.mode == "cdn":
            target = f"http://127.0.0.1:{self.cdn_port}/cdn/{request.match_info['digest']}"
            raise web.HTTPTemporaryRedirect(target)
        return await self.blob_at_cdn(request)

    async def blob_at_cdn(self, request: web.Request) -> web.Response:
        if self.mode == "cdn":
            self.cdn_authorization.append(request.headers.get("Authorization"))
        data = self.blobs.get(request.match_info["digest"])
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        return web.Response(body=data)

    async def referrers(self, request: web.Request) -> web.Response:
        if self.mode == "no_api_405":
            raise web.HTTPMethodNotAllowed("GET", ["HEAD"])
        name, subject = request.match_info["name"], request.match_info["digest"]
        wanted = request.query.get("artifactType")
        found = []
        for digest, (raw, media_type) in sorted(self.manifests.items()):
            doc = json.loads(raw)
            if (doc.get("subject") or {}).get("digest") != subject:
                continue
            kind = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
            if wanted and kind != wanted and self.mode != "ignore_filter":
                continue
            d = {"mediaType": media_type, "digest": digest, "size": len(raw)}
            d |= {"artifactType": kind, "annotations": doc.get("annotations", {})}
            found.append(d)
        start = int(request.query.get("page", "0"))
        page = found[start : start + self.page_size]
        headers = {"Content-Type": OCI_INDEX}
        if wanted and self.mode != "ignore_filter":
            headers["OCI-Filters-Applied"] = "artifactType"
        if start + self.page_size < len(found):
            query = f"page={start + self.page_size}" + (
                f"&artifactType={quote(wanted, safe='')}" if wanted else ""
            )
            headers["Link"] = f'</v2/{name}/referrers/{subject}?{query}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page}
        return web.Response(body=json.dumps(body).encode(), headers=headers)


@contextlib.asynccontextmanager
async def serving(endpoint: OciEndpoint) -> AsyncIterator[OciEndpoint]:
    """The endpoint on a free loopback port (``endpoint.port``)."""
    app = web.Application(middlewares=[endpoint.auth])
    name = "{name:[a-z0-9/._-]+?}"
    app.router.add_get(f"/v2/{name}/tags/list", endpoint.tag_list)
    app.router.add_get(f"/v2/{name}/manifests/{{ref}}", endpoint.manifest)
    app.router.add_get(f"/v2/{name}/blobs/{{digest}}", endpoint.blob_get)
    app.router.add_get(f"/v2/{name}/referrers/{{digest}}", endpoint.referrers)
    cdn = web.Application()
    cdn.router.add_get("/cdn/{digest}", endpoint.blob_at_cdn)
    runners = [web.AppRunner(app, shutdown_timeout=0.1), web.AppRunner(cdn, shutdown_timeout=0.1)]
    endpoint.port, endpoint.cdn_port = free_port(), free_port()
    for runner, port in zip(runners, (endpoint.port, endpoint.cdn_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield endpoint
    finally:
        for runner in runners:
            await runner.cleanup()
