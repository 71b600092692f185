"""``/api/v1/entries``: signing history (the filters of ``tlog-monitor history``), and one
stored entry with its full record and raw body."""

from __future__ import annotations

from aiohttp import web

from monitor.api.errors import bad_param, not_found
from monitor.api.pages import b64, respond
from monitor.api.params import Params
from monitor.api.router import Api, limit_of
from monitor.core.suggest import unknown_name
from monitor.storage import HistoryQuery
from monitor.storage.query_check import history_answer

EXT = "ext."
FILTERS = (
    "san",
    "issuer",
    "fingerprint",
    "digest",
    "subject",
    "image",
    "log",
    "from_index",
    "to_index",
    "since",
    "until",
    "all",
    "limit",
    "cursor",
)


def query_of(params: Params, max_page: int) -> HistoryQuery:
    exts = params.names(EXT)
    if len(exts) > 1:
        raise bad_param(exts[1], "one ext.<name> filter at a time")
    ext = None
    if exts:
        value = params.text(exts[0])
        assert value is not None
        ext = (exts[0][len(EXT) :], value)
    lo, hi = params.integer("from_index"), params.integer("to_index")
    if lo is not None and hi is not None and lo > hi:
        raise bad_param("to_index", f"to_index ({hi}) is before from_index ({lo})")
    since, until = params.time("since"), params.time("until")
    if since is not None and until is not None and since > until:
        raise bad_param("until", "until is before since")
    all_entries = params.boolean("all")
    if all_entries and (ext is not None or params.text("subject") is not None):
        which = exts[0] if ext is not None else "subject"
        raise bad_param(
            which,
            "all=true searches every entry's index, which keeps no "
            "extensions or subjects: search matched entries instead",
        )
    return HistoryQuery(
        san=params.text("san"),
        issuer=params.text("issuer"),
        ext=ext,
        fingerprint=params.text("fingerprint"),
        digest=params.text("digest"),
        subject=params.text("subject"),
        image=params.text("image"),
        log=params.text("log"),
        index_min=lo,
        index_max=hi,
        since=since,
        until=until,
        limit=limit_of(params, max_page),
        cursor=params.text("cursor"),
        all_entries=all_entries,
    )


async def list_entries(api: Api, request: web.Request) -> web.StreamResponse:
    params = Params(request.query, FILTERS, prefixes=(EXT,))
    query = query_of(params, api.ctx.server.max_page_size)
    answer = await history_answer(api.ctx.store, query, configured_logs=api.ctx.configured_logs())
    result = answer.page
    return respond(
        {
            "items": [e.to_json() for e in result.items],
            "next_cursor": result.next_cursor,
            "searched": [s.to_json() for s in answer.searched],
        }
    )


async def get_entry(api: Api, request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    log = request.match_info["log"]
    index = api.path_index(request)
    if log not in api.ctx.configured_logs() and await api.ctx.store.log_state(log) is None:
        known = await api.ctx.store.log_names()
        raise not_found(unknown_name("log", log, known))
    stored = await api.ctx.store.entry(log, index)
    if stored is not None:
        doc = stored.to_json()
        doc["malformed"] = False
        doc["raw_body"] = b64(stored.raw_body)
        doc["stored_at"] = None if stored.stored_at is None else stored.stored_at.isoformat()
        return respond(doc)
    bad = await api.ctx.store.malformed(log, index)
    if bad is not None:
        return respond(
            {
                "log": bad.log,
                "index": bad.index,
                "malformed": True,
                "reason": bad.reason,
                "kind": bad.kind,
                "api_version": bad.api_version,
                "raw_body": b64(bad.raw_body),
            }
        )
    raise not_found(
        f"no stored entry {log}#{index}: only entries that matched a rule, and malformed "
        "ones, are kept in full (all=true on /api/v1/entries searches the index of every entry)"
    )
