"""History: the search (every filter of ``/api/v1/entries``), one entry's page, and its
evidence file for ``tlog-monitor verify-bundle``."""

from __future__ import annotations

import base64
import json
import re

from aiohttp import web
from multidict import MultiDict

from monitor.api.entries import EXT, FILTERS, query_of
from monitor.api.errors import ApiError, bad_param, not_found
from monitor.api.params import Params
from monitor.api.router import Api
from monitor.console.render import render_page
from monitor.console.session import Session
from monitor.console.state import Console, filled
from monitor.core.errors import LogResponseError, TransientLogError, VerificationError
from monitor.core.suggest import unknown_name
from monitor.storage.logs_state import StoredCheckpoint
from monitor.storage.query_check import history_answer

# the form's two fields of the one ext.<name> filter the API takes
EXT_NAME, EXT_VALUE = "ext_name", "ext_value"
MAX_BODY_SHOWN = 256 * 1024  # bytes of a raw body shown on the page (all of it downloads)
_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def _api_query(form: MultiDict[str]) -> MultiDict[str]:
    """The API's parameters from the search form: ``ext_name``/``ext_value`` become
    ``ext.<name>``; ``all`` is a checkbox."""
    out = MultiDict((k, v) for k, v in form.items() if k not in (EXT_NAME, EXT_VALUE))
    name, value = form.get(EXT_NAME), form.get(EXT_VALUE)
    if (name is None) != (value is None):
        which = EXT_VALUE if value is None else EXT_NAME
        raise bad_param(which, "an extension filter needs both a name and a value")
    if name is not None and value is not None:
        out[f"{EXT}{name.strip()}"] = value
    return out


async def search(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    form = filled(request.query)
    searching = bool(form)
    answer = None
    if searching:
        params = Params(_api_query(form), FILTERS, prefixes=(EXT,))
        query = query_of(params, c.api.ctx.server.max_page_size)
        answer = await history_answer(
            c.api.ctx.store, query, configured_logs=c.api.ctx.configured_logs()
        )
    kept = [(k, v) for k, v in form.items() if k != "cursor"]
    return render_page(
        c.env,
        "history.html",
        session=s,
        form=dict(form),
        searching=searching,
        items=[] if answer is None else [i.to_json() for i in answer.page.items],
        searched=[] if answer is None else answer.searched,
        next_cursor=None if answer is None else answer.page.next_cursor,
        kept=kept,
        logs=await c.api.ctx.store.log_names(),
    )


async def _known_log(c: Console, log: str) -> None:
    store = c.api.ctx.store
    if log not in c.api.ctx.configured_logs() and await store.log_state(log) is None:
        raise not_found(unknown_name("log", log, await store.log_names()))


def _covering(checkpoints: list[StoredCheckpoint], index: int) -> StoredCheckpoint | None:
    """The smallest verified checkpoint that holds entry ``index``."""
    holding = [cp for cp in checkpoints if cp.verified and cp.size > index]
    return min(holding, key=lambda cp: cp.size) if holding else None


def _body_text(raw: bytes) -> str:
    """A raw body for reading: indented when it is JSON, else as text (invalid UTF-8
    replaced); cut at ``MAX_BODY_SHOWN`` bytes."""
    shown = raw[:MAX_BODY_SHOWN]
    try:
        text = json.dumps(json.loads(shown), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = shown.decode("utf-8", "replace")
    if len(raw) > MAX_BODY_SHOWN:
        text += f"\n[... {len(raw) - MAX_BODY_SHOWN} more bytes]"
    return text


async def entry_page(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    store = c.api.ctx.store
    log, index = request.match_info["log"], Api.path_index(request)
    await _known_log(c, log)
    stored = await store.entry(log, index)
    malformed = None if stored is not None else await store.malformed(log, index)
    if stored is None and malformed is None:
        raise not_found(
            f"no stored entry {log}#{index}: only entries that matched a rule, and malformed "
            "ones, are kept in full"
        )
    raw = stored.raw_body if stored is not None else malformed.raw_body if malformed else b""
    state = await store.log_state(log)
    covering = _covering(await store.checkpoints(log, limit=100), index)
    record = {} if stored is None else stored.record
    return render_page(
        c.env,
        "entry.html",
        session=s,
        log=log,
        index=index,
        e=stored,
        malformed=malformed,
        record=record,
        signers=record.get("signers", []),
        digests=[d for d in record.get("artifact_digests", []) if d],
        subjects=record.get("subjects", []),
        body=_body_text(raw),
        body_b64=base64.b64encode(raw[:MAX_BODY_SHOWN]).decode("ascii"),
        raw_size=len(raw),
        checkpoint=covering,
        verified_size=None if state is None else state.verified_size,
        verified_note=None if state is None else state.verified_checkpoint,
        evidence=c.api.ctx.evidence is not None and stored is not None,
    )


async def evidence(c: Console, request: web.Request, s: Session) -> web.StreamResponse:
    log, index = request.match_info["log"], Api.path_index(request)
    await _known_log(c, log)
    make = c.api.ctx.evidence
    if make is None:
        raise ApiError(404, "not_found", "evidence files are made by the running daemon only")
    if await c.api.ctx.store.entry(log, index) is None:
        raise not_found(f"no stored entry {log}#{index}")
    try:
        data = await make(log, index)
    except (TransientLogError, LogResponseError, VerificationError) as e:
        raise ApiError(502, "bad_gateway", f"no evidence from the log now: {e}") from None
    name = _FILENAME.sub("_", f"{log}-{index}")[:120] + ".json"
    return web.Response(
        body=data,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
