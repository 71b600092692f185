"""What the demo prints before the alerts: what runs where, and where to look."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

from monitor.config.models import Settings
from monitor.demo.layout import DEMO_TOKEN, Layout
from monitor.demo.plants import ROGUE
from monitor.sim.server import SimState

PROGRAM = "tlog-monitor"


def demo_token(settings: Settings) -> str | None:
    """The demo token, if the configuration lets it read the API."""
    digest = hashlib.sha256(DEMO_TOKEN.encode()).digest()
    for token in settings.server.tokens:
        if "read" in token.scopes and hmac.compare_digest(token.digest(), digest):
            return DEMO_TOKEN
    return None


def program() -> str:
    """How to run this program again, as typed here: ``tlog-monitor`` when the shell finds
    this very program by that name, else its path (``make demo`` runs ``.venv/bin/...``)."""
    argv0 = sys.argv[0]
    if Path(argv0).name != PROGRAM:
        return PROGRAM  # run some other way (python -m): the installed name is the best bet
    found = shutil.which(PROGRAM)
    if found is not None and Path(found).resolve() == Path(argv0).resolve():
        return PROGRAM
    path = Path(argv0).absolute()
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return shlex.quote(str(path))


def command(name: str, config: Path) -> str:
    """A command of this program on the demo's configuration, ready to paste."""
    return f"{program()} {name} --config {shlex.quote(str(config))}"


def banner(
    settings: Settings, config: Path, layout: Layout, state: SimState, rate: float
) -> list[str]:
    api = f"http://{settings.server.listen}"
    token = demo_token(settings)
    auth = f"-H 'Authorization: Bearer {token}' " if token else ""
    san = ROGUE.san_uri
    shards = len(state.v1.shards)
    return [
        "tlog-monitor demo: everything on this host, nothing from the internet.",
        "",
        f"  simulator  {layout.sim_url}: Rekor v1 ({shards} shards, {state.v1.size} entries) and "
        f"Rekor v2 ({state.v2.size} entries), {rate:g} new entries a second",
        f"  monitor    {config}, {len(settings.watch)} watch rules, database {layout.database}",
        f"  receiver   {layout.receiver_url}: checks each alert's signature, prints it below",
        "",
        f"  API        {api}/api/v1/findings"
        + (f"  (token {token}: read and write)" if token else "  (no demo token configured)"),
        f"  metrics    {api}/metrics",
        f"  health     {api}/healthz",
        "  history of an identity, here the unexpected signer the demo plants:",
        f"    curl {auth}'{api}/api/v1/entries?san={quote(san, safe='')}'",
        "  the same from the database, and the findings to triage:",
        f"    {command('history', config)} --san {shlex.quote(san)}",
        f"    {command('findings', config)} --state open",
        "",
        "Planting entries in the logs; alerts appear as the receiver gets them. Ctrl-C stops.",
    ]
