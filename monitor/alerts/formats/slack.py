"""Slack incoming webhooks: ``text`` for notifications, ``blocks`` for reading.

Everything taken from the log is escaped (``&``, ``<``, ``>``) and set ``verbatim``, so that a
hostile SAN can neither link nor mention; link previews are off. The Slack URL is the sink's
endpoint and never enters a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from monitor import __version__
from monitor.alerts.events import TEST_TITLE, Alert, AlertFinding, Event, JSONObject, JSONValue
from monitor.alerts.formats.text import (
    clip,
    common,
    dumps,
    entry_name,
    json_headers,
    kind,
    kinds,
    max_severity,
)
from monitor.alerts.message import Context, EntryUrl, Message, group_key, message
from monitor.config.models import SinkSettings
from monitor.core.escape import escape

SLACK_LISTED: Final = 10  # findings shown in a group's message
_TEXT_MAX = 3000  # a section's mrkdwn text
_FIELD_MAX = 2000  # a section field
_HEADER_MAX = 150
_VALUE_MAX = 300  # one value from the log (a SAN, a subject) as shown
_DETAIL_MAX = 1500

Block = JSONObject


def render(sink: SinkSettings, alert: Alert, ctx: Context) -> Message:
    event, fs = alert.event, alert.findings
    blocks: list[JSONValue] = [_header(event, fs)]
    if event == "test":
        blocks.append(_mrkdwn_section(_test_text(sink)))
    elif len(fs) == 1:
        blocks += _single(event, fs[0], ctx.entry_url)
    else:
        blocks += _group(event, fs, ctx.entry_url)
    footer = f"tlog-monitor {__version__} · sink {sink.name}"
    if event != "test":
        footer += f" · {_plural(len(fs), 'finding')} · key {group_key(alert.dedup_keys)}"
    blocks.append({"type": "context", "elements": [_mrkdwn(escape_mrkdwn(footer))]})
    doc: JSONObject = {
        "text": _fallback(event, fs, sink),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return message(dumps(doc), json_headers(), alert)


def escape_mrkdwn(text: str) -> str:
    """Text for Slack mrkdwn: ``&``, ``<`` and ``>`` as entities (so no ``<!channel>``,
    ``<@U123>`` or ``<url|label>`` survives), control characters made visible."""
    return escape(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_esc = escape_mrkdwn


def _header(event: Event, fs: Sequence[AlertFinding]) -> Block:
    # plain_text: Slack parses neither links nor mentions here; only configured names and
    # our enums go in it anyway
    if event == "test":
        text = f":test_tube: {TEST_TITLE}"
    else:
        what = kind(fs[0]) if len(fs) == 1 else f"{len(fs)} {kinds(fs)} findings"
        rule = common(f.rule for f in fs)
        text = f"{what} · rule {rule}" if rule else what
        if event == "resolve":
            text = f":white_check_mark: RESOLVED: {text}"
        else:
            text = f"{_emoji(max_severity(fs))} {max_severity(fs).upper()}: {text}"
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, _HEADER_MAX)}}


def _emoji(severity: str) -> str:
    if severity in ("critical", "high"):
        return ":rotating_light:"
    return ":warning:" if severity == "medium" else ":information_source:"


def _fallback(event: Event, fs: Sequence[AlertFinding], sink: SinkSettings) -> str:
    """The notification text: configured names and our enums, no values from the log."""
    if event == "test":
        return _esc(f"{TEST_TITLE} (sink {sink.name})")
    f = fs[0]
    rule = common(x.rule for x in fs)
    if len(fs) == 1:
        text = kind(f)
        if rule:
            text += f", rule {rule}"
        if f.log is not None:
            text += f", {entry_name(f)}"
        if f.image is not None:  # the configured repository (tags and digests: in blocks)
            text += f", {f.image.repository}"
    else:
        text = f"{len(fs)} {kinds(fs)} findings" + (f" of rule {rule}" if rule else "")
    if event == "resolve":
        return _esc(f"RESOLVED: {text}")
    return _esc(f"[{max_severity(fs).upper()}] {text}")


def _test_text(sink: SinkSettings) -> str:
    return (
        f"*{_esc(TEST_TITLE)}*\n"
        f"This is a test alert, sent by `tlog-monitor alerts test --sink {_esc(sink.name)}` "
        "to check that alerts reach this channel. *No action is needed.*"
    )


def _single(event: Event, f: AlertFinding, entry_url: EntryUrl | None) -> list[JSONValue]:
    fields = [
        f"*Severity*\n{_esc(str(f.severity))}",
        f"*Kind*\n{_esc(kind(f))}",
        f"*Rule*\n{_esc(f.rule or '-')}",
        f"*Log entry*\n{_entry(f, entry_url)}",
    ]
    shown: list[JSONValue] = [_mrkdwn(_clip_mrkdwn(t, _FIELD_MAX)) for t in fields]
    blocks: list[JSONValue] = [{"type": "section", "fields": shown}]
    if image := _image(f):
        blocks.append(_mrkdwn_section("*Image*\n" + image))
    if event == "resolve":
        blocks.append(_mrkdwn_section("*This finding has cleared.*"))
    if matched := _matched(f):
        blocks.append(_mrkdwn_section("*Identity and artifact (matched)*\n" + matched))
    if unmet := _unmet(f):
        blocks.append(_mrkdwn_section("*Why `expect` failed*\n" + unmet))
    if f.detail:
        blocks.append(_mrkdwn_section("*Detail*\n" + _esc(clip(f.detail, _DETAIL_MAX))))
    return blocks


def _group(event: Event, fs: Sequence[AlertFinding], entry_url: EntryUrl | None) -> list[JSONValue]:
    rule = common(f.rule for f in fs)
    intro = f"*{len(fs)} findings*" + (f" of rule *{_esc(rule)}*" if rule else "")
    intro += " cleared." if event == "resolve" else " arrived together."
    if len(fs) > SLACK_LISTED:
        intro += f" The first {SLACK_LISTED} are listed; every one is in the findings record."
    blocks: list[JSONValue] = [_mrkdwn_section(intro)]
    for n, f in enumerate(fs[:SLACK_LISTED], start=1):
        lines = [f"*{n}.* {_entry(f, entry_url)} · {_esc(str(f.severity))} {_esc(kind(f))}"]
        if image := _image(f):
            lines.append(image)
        if matched := _matched(f, limit=3):
            lines.append(matched)
        if unmet := _unmet(f, limit=3):
            lines.append(unmet)
        if not matched and not unmet and f.detail:
            lines.append(_esc(clip(f.detail, 500)))
        blocks.append(_mrkdwn_section("\n".join(lines)))
    if (more := len(fs) - SLACK_LISTED) > 0:
        text = f"…and {_plural(more, 'more finding')} not shown here."
        blocks.append({"type": "context", "elements": [_mrkdwn(text)]})
    return blocks


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _entry(f: AlertFinding, entry_url: EntryUrl | None) -> str:
    if f.log is None:
        return "-"
    name = _esc(entry_name(f))
    if f.index is None or entry_url is None:
        return name
    url = entry_url(f.log, f.index)
    return f"<{url}|{name}>" if url is not None and _safe_url(url) else name


def _safe_url(url: str) -> bool:
    """A URL that cannot break out of ``<url|label>``."""
    return (
        url.startswith(("https://", "http://"))
        and len(url) <= 2000
        and all("!" <= c <= "~" and c not in "<>|" for c in url)
    )


def _image(f: AlertFinding) -> str:
    """The repository, tag and digest of a registry finding, as code (they came from a
    registry: escaped like any value from the log); empty for other findings."""
    if f.image is None:
        return ""
    lines = [f"• repository: {_code(f.image.repository)}"]
    if f.image.tag is not None:
        lines.append(f"• tag: {_code(f.image.tag)}")
    if f.image.digest is not None:
        lines.append(f"• digest: {_code(f.image.digest)}")
    return "\n".join(lines)


def _matched(f: AlertFinding, limit: int = 10) -> str:
    lines = [f"• {_esc(field)}: {_code(value)}" for field, value in f.matched[:limit]]
    if len(f.matched) > limit:
        lines.append(f"• (+{len(f.matched) - limit} more)")
    return "\n".join(lines)


def _unmet(f: AlertFinding, limit: int = 10) -> str:
    lines = []
    for u in f.unmet[:limit]:
        actual = _code_list(u.actual) or "_absent_"
        lines.append(f"• {_esc(u.field)} is {actual}, expected {_code_list(u.expected)}")
    if len(f.unmet) > limit:
        lines.append(f"• (+{len(f.unmet) - limit} more)")
    return "\n".join(lines)


def _code_list(values: Sequence[str], limit: int = 5) -> str:
    shown = " or ".join(_code(v, 200) for v in values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _code(value: str, limit: int = _VALUE_MAX) -> str:
    """A value from the log as inline code: escaped; a backtick (which would end the code
    span) shown as ``'``."""
    if not value:
        return "_empty_"
    return "`" + _esc(clip(value, limit).replace("`", "'")) + "`"


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _mrkdwn_section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(_clip_mrkdwn(text, _TEXT_MAX))}


def _clip_mrkdwn(text: str, limit: int) -> str:
    """At most ``limit`` characters, never cutting an entity (``&amp;``) or a link."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi:
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    if cut.count("`") % 2:  # an open code span
        cut = cut[: cut.rfind("`")]
    return cut + "…"
