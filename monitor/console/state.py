"""What every page of the console shares: the API's state (context, tokens), the template
environment and where the console is mounted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jinja2
from aiohttp import web
from multidict import MultiDict, MultiMapping

from monitor.api.router import Api
from monitor.console.session import Session


@dataclass(frozen=True)
class Console:
    api: Api
    env: jinja2.Environment
    prefix: str  # "/ui"


Handler = Callable[[Console, web.Request, Session], Awaitable[web.StreamResponse]]


def filled(query: MultiMapping[str]) -> MultiDict[str]:
    """A form's query without its empty fields: a form sends every field, and the API's
    parameters refuse an empty one."""
    return MultiDict((k, v) for k, v in query.items() if v.strip() != "")
