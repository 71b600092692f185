"""The schemas of the OpenAPI document (its ``components``): what each answer and request body
of the API holds. The paths and their parameters are ``monitor.api.openapi``'s."""

from __future__ import annotations

from typing import Any

from monitor.api.findings import MAX_COMMENT
from monitor.core.findings import FindingKind, FindingState, Severity

JSON = dict[str, Any]


def nullable(kind: str, **more: Any) -> JSON:
    return {"type": [kind, "null"], **more}


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(item: str) -> JSON:
    """A page of ``item`` objects and the cursor of the next one (null on the last)."""
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "next_cursor": nullable("string"),
        },
    }


IMAGE: JSON = {
    "type": "object",
    "required": ["repository", "tag", "digest"],
    "properties": {
        "repository": {"type": "string", "description": "normalised: host/name"},
        "tag": nullable("string", description="the watched tag pointing at it, if any"),
        "digest": nullable("string", description="the manifest or index digest"),
    },
}


def components() -> JSON:
    entry_props: JSON = {
        "log": {"type": "string"},
        "index": {"type": "integer"},
        "integrated_time": nullable("integer"),
        "time": {"type": "integer", "description": "unix seconds"},
        "kind": {"type": "string"},
        "api_version": {"type": "string"},
        "san": nullable("string"),
        "issuer": nullable("string"),
        "key_fingerprint": nullable("string"),
        "cert_fingerprint": nullable("string"),
        "digest": nullable("string"),
        "record": {"type": "object", "description": "everything parsed from the entry"},
        "images": {
            "type": "array",
            "description": "the images whose registry signatures are tied to this entry (its "
            "log index and body): one per repository, tag and digest",
            "items": ref("Image"),
        },
    }
    finding_props: JSON = {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": [str(k) for k in FindingKind]},
        "type": nullable("string"),
        "severity": {"type": "string", "enum": [str(s) for s in Severity]},
        "rule": nullable("string"),
        "log": nullable("string"),
        "index": nullable("integer"),
        "dedup_key": {"type": "string"},
        "state": {"type": "string", "enum": [str(s) for s in FindingState]},
        "created_at": {"type": "string", "format": "date-time"},
        "matched": {"type": "array", "items": {"type": "object"}},
        "unmet": {"type": "array", "items": {"type": "object"}},
        "detail": {"type": "string"},
        "state_changed_by": nullable("string"),
        "state_changed_at": nullable("string"),
        "comment": nullable("string"),
        "image": {
            "description": "the image a registry finding is about; null for other findings",
            "oneOf": [ref("Image"), {"type": "null"}],
        },
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
                "description": "the cosignatures of the log's configured witnesses on it, as "
                "checked when the monitor stored it (for a checkpoint stored while no "
                "witnesses were configured: checked against the current policy)",
                "items": {
                    "type": "object",
                    "required": ["witness", "key_id", "time", "status"],
                    "properties": {
                        "witness": {"type": "string"},
                        "key_id": {"type": "string"},
                        "time": nullable("integer"),
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
                        "param": nullable("string"),
                    },
                }
            },
        },
        "Image": IMAGE,
        "Entry": {
            "type": "object",
            "required": ["log", "index", "time", "kind"],
            "properties": entry_props,
        },
        "EntryPage": {
            "type": "object",
            "required": ["items", "next_cursor", "searched"],
            "properties": {
                **page_of("Entry")["properties"],
                "searched": {"type": "array", "items": ref("Searched")},
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
                "from_index": nullable("integer"),
                "to_index": nullable("integer"),
                "from_time": nullable("string"),
                "to_time": nullable("string"),
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
                "stored_at": nullable("string"),
                "kind": nullable("string"),
                "api_version": nullable("string"),
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
            "properties": {**finding_props, "evidence": nullable("object")},
        },
        "FindingPage": page_of("Finding"),
        "StateChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"comment": nullable("string", maxLength=MAX_COMMENT)},
        },
        "Checkpoint": checkpoint,
        "CheckpointPage": page_of("Checkpoint"),
        "Log": {
            "type": "object",
            "required": ["name", "api", "url", "tailed", "cursor", "latest_checkpoint"],
            "properties": {
                "name": {"type": "string"},
                "api": {"type": "string", "enum": ["v1", "v2"]},
                "url": {"type": "string"},
                "tailed": {"type": "boolean"},
                "cursor": {"type": "integer"},
                "verified_size": nullable("integer"),
                "verified_root_hash": nullable("string"),
                "latest_checkpoint": {"oneOf": [ref("Checkpoint"), {"type": "null"}]},
                "lag_entries": nullable("integer"),
                "log_size": nullable("integer"),
                "last_success_at": nullable("string"),
                "last_progress_at": nullable("string"),
                "failing_since": nullable("string"),
                "last_error": nullable("string"),
                "integrity_failure": nullable("string"),
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
            "properties": {"items": {"type": "array", "items": ref("Log")}},
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
