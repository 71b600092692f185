"""History and findings queries checked before they run, for the CLI and the API alike.

To a responder an empty answer means "the identity never signed", so a query must not come
back empty because of a typo: an unknown extension, log or rule is refused with the closest
known name; an extension OID is read as its Fulcio name (as watch rules read it); a
fingerprint or digest must have a shape the monitor stores (or end with ``*``, a prefix),
so that a truncated value is refused instead of matching nothing. Every refusal is a
``QueryError`` naming the API parameter at fault.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.core.errors import QueryError
from monitor.core.suggest import unknown_name
from monitor.entries.x509 import FULCIO_EXTENSION_OIDS, FULCIO_EXTENSIONS
from monitor.storage.coverage import Searched
from monitor.storage.findings_store import FindingQuery
from monitor.storage.history import HistoryItem
from monitor.storage.history_query import HistoryQuery
from monitor.storage.image_history import image_filter
from monitor.storage.paging import Page
from monitor.storage.ports import DeadLetters, FindingsReader, HistoryReader, LogNames

FULCIO_ARC = "1.3.6.1.4.1.57264.1"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_SSH = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
# lengths of the hex digests the parser names by algorithm
DIGEST_HEX = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
BARE_DIGEST = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}

FINGERPRINT_SHAPES = (
    "sha256:<64 hex digits> (a key or certificate), SHA256:<43 base64 characters> (SSH), "
    "40 or 64 hex digits (OpenPGP; a TUF key id), 16 hex digits (minisign) or "
    "serial:<serial> (a timestamp authority)"
)


def extension_name(name: str, param: str = "ext") -> str:
    """The Fulcio extension ``name`` stands for (a name, or its dotted OID)."""
    if name in FULCIO_EXTENSION_OIDS:
        return name
    if _OID.fullmatch(name):
        found = FULCIO_EXTENSIONS.get(name)
        if found is None:
            raise QueryError(
                f"extension {name} is not a Fulcio extension: history keeps Fulcio "
                "extensions only (watch rules can match any OID)",
                param,
            )
        return found
    message = unknown_name("Fulcio extension", name, FULCIO_EXTENSION_OIDS)
    raise QueryError(f"{message}; or their OIDs, {FULCIO_ARC}.*", param)


def fingerprint(text: str, *, prefix_ok: bool = True) -> str:
    """A key or certificate fingerprint as stored (hex in the case the parser writes), or a
    prefix of one ending with ``*``."""
    value = text.strip()
    if value.endswith("*") and prefix_ok:
        return _fingerprint_case(value[:-1]) + "*"
    fixed = _fingerprint_case(value)
    alg, sep, rest = fixed.partition(":")
    whole = (
        (sep and alg == "sha256" and len(rest) == 64 and _HEX.fullmatch(rest))
        or _SSH.fullmatch(fixed)
        or (not sep and len(fixed) in (16, 40, 64) and _HEX.fullmatch(fixed))
        or (sep and alg == "serial" and rest)
    )
    if not whole:
        hint = "; end it with * to search by a prefix" if prefix_ok else ""
        raise QueryError(
            f"{text[:100]!r} is not a whole fingerprint: {FINGERPRINT_SHAPES}{hint}",
            "fingerprint",
        )
    return fixed


def _fingerprint_case(value: str) -> str:
    alg, sep, rest = value.partition(":")
    # SHA256:<base64> is SSH's; sha256:<hex> (any case) the others'
    hexa = bool(_HEX.fullmatch(rest))
    if sep and alg.lower() == "sha256" and hexa and (alg != "SHA256" or len(rest) == 64):
        return "sha256:" + rest.lower()
    if not sep and _HEX.fullmatch(value):
        # minisign key ids are written in upper case, every other hex fingerprint in lower
        return value.upper() if len(value) == 16 else value.lower()
    return value


def digest(text: str, *, prefix_ok: bool = True) -> str:
    """A digest as stored (``alg:hex``, lower case; bare hex named by its length), or a
    prefix of one ending with ``*``."""
    value = text.strip().lower()
    if value.endswith("*") and prefix_ok:
        return value
    alg, sep, hexa = value.partition(":")
    if not sep:
        alg, hexa = BARE_DIGEST.get(len(value), ""), value
    wanted = DIGEST_HEX.get(alg)
    hint = "; end it with * to search by a prefix" if prefix_ok else ""
    if not alg:
        raise QueryError(
            f"{text[:100]!r} is not a whole digest: give <algorithm>:<hex> or the hex of a "
            f"sha1, sha256, sha384 or sha512 digest (40, 64, 96 or 128 digits){hint}",
            "digest",
        )
    if not hexa or (wanted is not None and (len(hexa) != wanted or not _HEX.fullmatch(hexa))):
        raise QueryError(
            f"{text[:100]!r} is not a whole {alg} digest: {wanted} hex digits{hint}", "digest"
        )
    return f"{alg}:{hexa}"


async def checked_history(
    store: HistoryReader, q: HistoryQuery, *, configured_logs: Iterable[str] = ()
) -> HistoryQuery:
    """``q`` with its extension named as stored and its fingerprint and digest in the stored
    shape; ``QueryError`` for what cannot match anything."""
    ext = q.ext
    if ext is not None:
        ext = (extension_name(ext[0], f"ext.{ext[0]}"), ext[1])
    whole = not q.all_entries  # index_all finds fingerprints and digests whole only
    fp = None if q.fingerprint is None else fingerprint(q.fingerprint, prefix_ok=whole)
    dg = None if q.digest is None else digest(q.digest, prefix_ok=whole)
    image = None if q.image is None else str(image_filter(q.image))
    if q.log is not None:
        if q.all_entries:
            indexed = await store.index_all_log_names()
            if q.log not in indexed:
                known = await store.log_names()
                if q.log in known or q.log in set(configured_logs):
                    raise QueryError(
                        f"log {q.log!r} has no index_all rows (index_all is not on for it): "
                        "search its matched entries instead (without all)",
                        "log",
                    )
                raise QueryError(unknown_name("log", q.log, indexed), "log")
        else:
            await check_log(store, q.log, configured_logs)
    return dataclasses.replace(q, ext=ext, fingerprint=fp, digest=dg, image=image)


@dataclass(frozen=True)
class HistoryAnswer:
    """A page of history and what was searched for it."""

    page: Page[HistoryItem]
    searched: list[Searched]


async def history_answer(
    store: HistoryReader, q: HistoryQuery, *, configured_logs: Iterable[str] = ()
) -> HistoryAnswer:
    """The page ``q`` asks for, checked first, and what was searched: the CLI and the API
    answer the same."""
    checked = await checked_history(store, q, configured_logs=configured_logs)
    page = await store.history(checked)
    if checked.all_entries:
        searched = await store.searched_index_all(checked.log)
    else:
        searched = await store.searched(checked.log)
    return HistoryAnswer(page, searched)


async def check_log(store: LogNames, log: str, configured: Iterable[str] = ()) -> None:
    configured = set(configured)
    if log in configured:
        return
    known = await store.log_names()
    if log not in known:
        raise QueryError(unknown_name("log", log, {*known, *configured}), "log")


async def checked_findings(
    store: FindingsReader,
    q: FindingQuery,
    *,
    configured_rules: Iterable[str] = (),
    configured_logs: Iterable[str] = (),
) -> FindingQuery:
    """``q`` if its rule and log are known: named by the configuration (when the caller has
    it) or by what the database holds."""
    rules = set(configured_rules)
    if q.rule is not None and q.rule not in rules and not await store.has_finding_rule(q.rule):
        known = rules | set(await store.finding_rules())
        raise QueryError(unknown_name("rule", q.rule, known), "rule")
    if q.log is not None:
        await check_log(store, q.log, configured_logs)
    return q


async def check_sink(store: DeadLetters, sink: str, configured: Iterable[str] = ()) -> None:
    """``sink`` is named by the configuration or by the outbox."""
    configured = set(configured)
    if sink in configured:
        return
    known = await store.outbox_sinks()
    if sink not in known:
        raise QueryError(unknown_name("sink", sink, {*known, *configured}), "sink")
