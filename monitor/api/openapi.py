"""The OpenAPI 3.1 document of the API, served at ``/api/v1/openapi.json``.

Written out by hand, beside the handlers it describes; a test fuzzes the running API against
it (schemathesis), so the two cannot drift apart unnoticed."""

from __future__ import annotations

from typing import Any

from monitor.api.findings import MAX_COMMENT
from monitor.core.findings import FindingKind, FindingState, Severity
from monitor.storage.paging import DEFAULT_PAGE_SIZE

JSON = dict[str, Any]


def _nullable(kind: str, **more: Any) -> JSON:
    return {"type": [kind, "null"], **more}


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _page_of(item: str) -> JSON:
    """A page of ``item`` objects and the cursor of the next one (null on the last)."""
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": _nullable("string"),
        },
    }


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
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _ok(schema: str, description: str = "OK") -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


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
            "content": {"application/json": {"schema": _ref("StateChange")}},
        }
    return op


def _schemas() -> JSON:
    entry_props: JSON = {
        "log": {"type": "string"},
        "index": {"type": "integer"},
        "integrated_time": _nullable("integer"),
        "time": {"type": "integer", "description": "unix seconds"},
        "kind": {"type": "string"},
        "api_version": {"type": "string"},
        "san": _nullable("string"),
        "issuer": _nullable("string"),
        "key_fingerprint": _nullable("string"),
        "cert_fingerprint": _nullable("string"),
        "digest": _nullable("string"),
        "record": {"type": "object", "description": "everything parsed from the entry"},
    }
    finding_props: JSON = {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": [str(k) for k in FindingKind]},
        "type": _nullable("string"),
        "severity": {"type": "string", "enum": [str(s) for s in Severity]},
        "rule": _nullable("string"),
        "log": _nullable("string"),
        "index": _nullable("integer"),
        "dedup_key": {"type": "string"},
        "state": {"type": "string", "enum": [str(s) for s in FindingState]},
        "created_at": {"type": "string", "format": "date-time"},
        "matched": {"type": "array", "items": {"type": "object"}},
        "unmet": {"type": "array", "items": {"type": "object"}},
        "detail": {"type": "string"},
        "state_changed_by": _nullable("string"),
        "state_changed_at": _nullable("string"),
        "comment": _nullable("string"),
    }
    checkpoint: JSON = {
        "type": "object",
        "required": ["origin", "size", "root_hash", "verified", "seen_at", "note"],
        "properties": {
            "origin": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "root_hash": {"type": "string", "pattern": "^[0-9a-f]*$"},
            "verified": {"type": "boolean"},
            "seen_at": {"type": "string", "format": "date-time"},
            "note": {"type": "string", "description": "the signed note as served"},
            "cosigners": {
                "type": "array",
                "description": "the cosignatures of the log's configured witnesses on it",
                "items": {
                    "type": "object",
                    "required": ["witness", "key_id", "time", "status"],
                    "properties": {
                        "witness": {"type": "string"},
                        "key_id": {"type": "string"},
                        "time": _nullable("integer"),
                        "status": {"enum": ["verified", "invalid", "unsupported"]},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "code", "message", "param"],
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "param": _nullable("string"),
                    },
                }
            },
        },
        "Entry": {
            "type": "object",
            "required": ["log", "index", "time", "kind"],
            "properties": entry_props,
        },
        "EntryPage": {
            "type": "object",
            "required": ["items", "next_cursor", "searched"],
            "properties": {
                **_page_of("Entry")["properties"],
                "searched": {"type": "array", "items": _ref("Searched")},
            },
        },
        "Searched": {
            "type": "object",
            "description": "one log as the search covered it: matched entries from the index "
            "where watching began (null: not kept) to the last verified, between when watching "
            "began and when the log was last stored, plus the ranges backfilled; with all=true, "
            "the first and last index_all row, with their entries' times. to_index is null when "
            "nothing was searched yet. Entries before from_index are not in the database "
            "unless backfilled.",
            "required": ["log", "from_index", "to_index", "from_time", "to_time", "backfilled"],
            "properties": {
                "log": {"type": "string"},
                "from_index": _nullable("integer"),
                "to_index": _nullable("integer"),
                "from_time": _nullable("string"),
                "to_time": _nullable("string"),
                "backfilled": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["from_index", "to_index"],
                        "properties": {
                            "from_index": {"type": "integer"},
                            "to_index": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "EntryDetail": {
            "type": "object",
            "required": ["log", "index", "malformed", "raw_body"],
            "properties": {
                **entry_props,
                "malformed": {"type": "boolean"},
                "reason": {"type": "string", "description": "why a malformed entry is"},
                "raw_body": {"type": "string", "contentEncoding": "base64"},
                "stored_at": _nullable("string"),
                "kind": _nullable("string"),
                "api_version": _nullable("string"),
            },
        },
        "Finding": {
            "type": "object",
            "required": ["id", "kind", "severity", "state", "created_at", "dedup_key"],
            "properties": finding_props,
        },
        "FindingDetail": {
            "type": "object",
            "required": ["id", "kind", "severity", "state", "created_at", "dedup_key"],
            "properties": {**finding_props, "evidence": _nullable("object")},
        },
        "FindingPage": _page_of("Finding"),
        "StateChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"comment": _nullable("string", maxLength=MAX_COMMENT)},
        },
        "Checkpoint": checkpoint,
        "CheckpointPage": _page_of("Checkpoint"),
        "Log": {
            "type": "object",
            "required": ["name", "api", "url", "tailed", "cursor", "latest_checkpoint"],
            "properties": {
                "name": {"type": "string"},
                "api": {"type": "string", "enum": ["v1", "v2"]},
                "url": {"type": "string"},
                "tailed": {"type": "boolean"},
                "cursor": {"type": "integer"},
                "verified_size": _nullable("integer"),
                "verified_root_hash": _nullable("string"),
                "latest_checkpoint": {"oneOf": [_ref("Checkpoint"), {"type": "null"}]},
                "lag_entries": _nullable("integer"),
                "log_size": _nullable("integer"),
                "last_success_at": _nullable("string"),
                "last_progress_at": _nullable("string"),
                "failing_since": _nullable("string"),
                "last_error": _nullable("string"),
                "integrity_failure": _nullable("string"),
                "frozen": {"type": "boolean"},
                "updated_at": {"type": "string"},
                "leader": {
                    "description": "the replica leading the log (tailing it), and since when",
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["replica", "since"],
                            "properties": {
                                "replica": {"type": "string"},
                                "since": {"type": "string", "format": "date-time"},
                            },
                        },
                        {"type": "null"},
                    ],
                },
            },
        },
        "LogList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Log")}},
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
        },
        "Ready": {
            "type": "object",
            "required": ["status", "database", "logs"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "database": {"type": "string"},
                "logs": {"type": "object", "additionalProperties": {"type": "string"}},
                "replica": {"type": "string", "description": "this replica (with ha:)"},
                "leads": {"type": "array", "items": {"type": "string"}},
            },
        },
    }


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
                "signing history: stored entries by identity, key, digest, log, index, time",
                _ok("EntryPage"),
                params=history,
                description="Also ext.<name>=<value>: a Fulcio certificate extension by its "
                "name or OID, e.g. ext.source-repository-uri=https://github.com/org/repo (one "
                "at a time). Filters are ANDed; results come in (log, index) order: logs by "
                "name, or with all=true in the order the monitor began indexing each. An "
                "unknown extension or log, or a fingerprint or digest that is neither whole "
                "nor a prefix ending with *, is a 400 naming the parameter; searched says what "
                "the answer covers.",
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
                "findings, newest first",
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
            "schemas": _schemas(),
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
