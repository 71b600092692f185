"""Pages from Jinja2 templates, every value shown made safe.

Autoescaping is on for every template, and ``finalize`` passes every value a template prints
through ``visible``: HTML-escaped, with each control, bidirectional or other invisible
character shown as its escape (``\\u202e``) in a marked span, so that a SAN, an extension or a
detail from a log can neither run as markup nor reorder or hide what surrounds it. No template
can forget it: a template prints nothing that has not been through ``finalize``. Only
``Markup`` the console builds itself (never from a log's text unescaped) passes unchanged.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from monitor.core.escape import escape as escape_text

STATIC_FILES = ("console.css", "console.js", "favicon.svg")


def visible(value: Any) -> Any:
    """A printed value: ``Markup`` unchanged; anything else as escaped text, its invisible
    characters made visible."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    text = str(value)
    if text.isprintable():
        return escape(text)
    out: list[Markup] = []
    for c in text:
        if c.isprintable():
            out.append(escape(c))
        else:
            # \n and \t too: a single-line field must not be broken by a log's text
            out.append(Markup('<span class="ctl">{}</span>').format(escape_text(c)))
    return Markup("").join(out)


def visible_lines(value: Any) -> Markup:
    """Text of several lines (a raw body, a checkpoint note): each line made visible, the
    line breaks kept."""
    if value is None:
        return Markup("")
    return Markup("\n").join(visible(line) for line in str(value).split("\n"))


def when(value: Any) -> str:
    """A time as ``2026-12-07 16:28:11Z`` from a datetime, an ISO string or Unix seconds."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        t = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def age(value: Any, now: float) -> str:
    """How long ago ``value`` (a datetime or ISO string) was: ``3d 4h``, ``5m``."""
    if value is None:
        return ""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    seconds = max(0, int(now - t.timestamp()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


@cache
def static_file(name: str) -> tuple[bytes, str]:
    """A static file's bytes and a short hash of them (the cache-busting version in its URL)."""
    data = resources.files("monitor.console").joinpath("static", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.console", "templates"),
        autoescape=True,
        finalize=visible,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["lines"] = visible_lines
    env.filters["when"] = when
    env.globals["static"] = lambda name: f"static/{name}?v={static_file(name)[1]}"
    return env


def render_page(
    env: jinja2.Environment, template: str, status: int = 200, **values: Any
) -> web.Response:
    body = env.get_template(template).render(**values)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
