"""The OpenAPI 3.1 document of the API, served at ``/api/v1/openapi.json``.

Written out by hand, beside the handlers it describes; a test fuzzes the running API against
it (schemathesis), so the two cannot drift apart unnoticed."""

from __future__ import annotations

from monitor.api.schemas import JSON, components, ref
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.storage.paging import DEFAULT_PAGE_SIZE


def _param(name: str, description: str, schema: JSON, where: str = "query") -> JSON:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


TEXT: JSON = {"type": "string", "minLength": 1, "maxLength": 4096}
INDEX: JSON = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
TIME: JSON = {
    "type": "string",
    "minLength": 1,
    "description": "ISO 8601 (UTC when no zone is given) or unix seconds",
}


def _page_params(max_page: int) -> list[JSON]:
    return [
        _param(
            "limit",
            f"page size (default {min(DEFAULT_PAGE_SIZE, max_page)})",
            {"type": "integer", "minimum": 1, "maximum": max_page},
        ),
        _param("cursor", "next_cursor of the previous page", TEXT),
    ]


def _error(description: str) -> JSON:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _ok(schema: str, description: str = "OK") -> JSON:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def _operation(
    op_id: str,
    summary: str,
    ok: JSON,
    *,
    params: list[JSON] | None = None,
    secured: str | None = "read",
    errors: tuple[int, ...] = (400,),
    body: bool = False,
    description: str | None = None,
) -> JSON:
    responses: JSON = {"200": ok}
    messages = {
        400: "a bad parameter (the error names it)",
        404: "no such object",
        408: "the body did not arrive within server.body_timeout",
        409: "the finding is resolved already",
        413: "the request body is too large",
        415: "the body is not JSON",
    }
    for status in errors:
        responses[str(status)] = _error(messages[status])
    op: JSON = {"operationId": op_id, "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if secured is not None:
        op["security"] = [{"bearer": [secured]}]
        responses["401"] = _error("no token, or an unknown one")
        responses["403"] = _error(f"the token lacks the {secured!r} scope")
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": ref("StateChange")}},
        }
    return op


def document(version: str, max_page: int, *, health_public: bool, metrics_public: bool) -> JSON:
    """The OpenAPI document, as this server is configured (page limit, open endpoints)."""
    history = [
        _param("san", "signer identity (SAN); a trailing * makes it a prefix", TEXT),
        _param("issuer", "OIDC issuer", TEXT),
        _param(
            "fingerprint",
            "a whole key or certificate fingerprint (sha256:<hex>, SHA256:<base64> for SSH, "
            "OpenPGP hex...), or a prefix ending with * (not with all=true)",
            TEXT,
        ),
        _param(
            "digest",
            "a whole artifact or subject digest (sha256:<hex>, or bare hex named by its "
            "length), or a prefix ending with * (not with all=true)",
            TEXT,
        ),
        _param("subject", "in-toto subject name", TEXT),
        _param(
            "image",
            "entries a registry signature of this image is tied to: a repository "
            "(ghcr.io/acme/app: all its tags and digests), or a reference with a tag or a "
            "digest (ghcr.io/acme/app:1.0, ghcr.io/acme/app@sha256:<hex>)",
            TEXT,
        ),
        _param("log", "log name", TEXT),
        _param("from_index", "first index (inclusive)", INDEX),
        _param("to_index", "last index (inclusive)", INDEX),
        _param("since", "entry time at or after", TIME),
        _param("until", "entry time before", TIME),
        _param(
            "all",
            "search the compact index of every entry (index_all) instead of matched entries",
            {"type": "boolean"},
        ),
        *_page_params(max_page),
    ]
    finding_filters = [
        _param(
            "state",
            "repeat for several",
            {"type": "array", "items": {"type": "string", "enum": [str(s) for s in FindingState]}},
        ),
        _param(
            "severity",
            "this severity or worse",
            {"type": "string", "enum": [str(s) for s in Severity]},
        ),
        _param(
            "kind",
            "repeat for several",
            {"type": "array", "items": {"type": "string", "enum": [str(k) for k in FindingKind]}},
        ),
        _param("rule", "rule name", TEXT),
        _param("log", "log name", TEXT),
        _param(
            "order",
            "newest first (default), or severity: the most severe first, oldest first within "
            "a severity (a queue to work through)",
            {"type": "string", "enum": ["newest", "severity"]},
        ),
        _param("since", "created at or after", TIME),
        _param("until", "created before", TIME),
        *_page_params(max_page),
    ]
    for p in finding_filters:
        if p["name"] in ("state", "kind"):  # repeated: ?state=open&state=acknowledged
            p["style"], p["explode"] = "form", True
    log_path = _param("log", "log name", {"type": "string", "minLength": 1}, "path")
    finding_id = _param("id", "finding id", INDEX, "path")
    health_scope = None if health_public else "read"
    metrics_scope = None if metrics_public else "read"
    paths: JSON = {
        "/healthz": {
            "get": _operation(
                "healthz", "the process answers", _ok("Health"), secured=health_scope, errors=()
            )
        },
        "/readyz": {
            "get": {
                **_operation(
                    "readyz",
                    "the database answers and every tailed log was verified recently",
                    _ok("Ready", "ready"),
                    secured=health_scope,
                    errors=(),
                ),
            }
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics (text exposition format)",
                {
                    "description": "metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                secured=metrics_scope,
                errors=(),
            )
        },
        "/api/v1/openapi.json": {
            "get": _operation(
                "openapi",
                "this document",
                {"description": "OpenAPI 3.1", "content": {"application/json": {}}},
                secured=None,
                errors=(),
            )
        },
        "/api/v1/entries": {
            "get": _operation(
                "listEntries",
                "signing history: stored entries by identity, key, digest, image, log, index, time",
                _ok("EntryPage"),
                params=history,
                description="Also ext.<name>=<value>: a Fulcio certificate extension by its "
                "name or OID, e.g. ext.source-repository-uri=https://github.com/org/repo (one "
                "at a time). Filters are ANDed; results come in (log, index) order: logs by "
                "name, or with all=true in the order the monitor began indexing each. An "
                "unknown extension or log, a fingerprint or digest that is neither whole nor "
                "a prefix ending with *, or an image that is no repository or reference, is a "
                "400 naming the parameter; searched says what the answer covers. Each item "
                "lists the images (repository, tag, digest) whose registry signatures are tied "
                "to it.",
            )
        },
        "/api/v1/entries/{log}/{index}": {
            "get": _operation(
                "getEntry",
                "one stored entry with its full record and raw body",
                _ok("EntryDetail"),
                params=[log_path, _param("index", "log index", INDEX, "path")],
                errors=(400, 404),
            )
        },
        "/api/v1/findings": {
            "get": _operation(
                "listFindings",
                "findings, newest first or by severity",
                _ok("FindingPage"),
                params=finding_filters,
            )
        },
        "/api/v1/findings/{id}": {
            "get": _operation(
                "getFinding",
                "one finding with its evidence",
                _ok("FindingDetail"),
                params=[finding_id],
                errors=(400, 404),
            )
        },
        "/api/v1/findings/{id}/ack": {
            "post": _operation(
                "acknowledgeFinding",
                "acknowledge a finding (who and when are recorded)",
                _ok("FindingDetail"),
                params=[finding_id],
                secured="write",
                errors=(400, 404, 408, 409, 413, 415),
                body=True,
            )
        },
        "/api/v1/findings/{id}/resolve": {
            "post": _operation(
                "resolveFinding",
                "resolve a finding; every sink that was alerted hears of it",
                _ok("FindingDetail"),
                params=[finding_id],
                secured="write",
                errors=(400, 404, 408, 409, 413, 415),
                body=True,
            )
        },
        "/api/v1/logs": {
            "get": _operation("listLogs", "where each log stands", _ok("LogList"), errors=())
        },
        "/api/v1/logs/{log}/checkpoint": {
            "get": _operation(
                "logCheckpoint",
                "the log's latest verified checkpoint, the signed note as the log served it "
                "(witness cosignatures included), for peers to compare with theirs",
                {
                    "description": "a signed note (C2SP tlog-checkpoint)",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                params=[log_path],
                errors=(400, 404),
            )
        },
        "/api/v1/logs/{log}/checkpoints": {
            "get": _operation(
                "logCheckpoints",
                "the checkpoints seen for a log, newest first",
                _ok("CheckpointPage"),
                params=[log_path, *_page_params(max_page)],
                errors=(400, 404),
            )
        },
    }
    paths["/readyz"]["get"]["responses"]["503"] = _ok("Ready", "not ready")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tlog-monitor",
            "version": version,
            "description": "Query what the transparency-log monitor stored: signing history, "
            "findings, logs and their checkpoints.",
        },
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token whose SHA-256 is in server.tokens",
                }
            },
        },
        "paths": paths,
    }
