"""Where the demo runs: three ports on loopback and one directory, ``.demo/`` in the working
directory. Everything the demo writes is under that directory, so that starting afresh
deletes only what an earlier demo made, whatever configuration file it is given."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.config.models import Settings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError

HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the API and metrics, as in config/demo.yaml
DEMO_DIR = Path(".demo")
DEMO_TOKEN = "demo-token"  # noqa: S105 - printed by the demo on purpose; only its hash is stored
HOOK_PATH = "/hook"


@dataclass(frozen=True)
class Layout:
    """The API on ``port``, the simulator on the next port, the receiver on the one after."""

    port: int = DEFAULT_PORT
    directory: Path = DEMO_DIR

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65533:
            raise ConfigError(f"--port {self.port}: between 1 and 65533 (it uses 3 ports)")

    @property
    def sim_port(self) -> int:
        return self.port + 1

    @property
    def receiver_port(self) -> int:
        return self.port + 2

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def sim_url(self) -> str:
        return f"http://{HOST}:{self.sim_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://{HOST}:{self.receiver_port}{HOOK_PATH}"

    @property
    def trust_dir(self) -> Path:
        return self.directory / "trust"

    @property
    def database(self) -> Path:
        return self.directory / "monitor.db"

    @property
    def config_copy(self) -> Path:
        """The configuration the demo runs: a copy of the one it is given."""
        return self.directory / "demo.yaml"

    def fresh(self) -> None:
        """Make the directory, without the database of an earlier run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                self.database.with_name(self.database.name + suffix).unlink()

    def config_for(self, source: Path) -> Path:
        """The configuration to run: a copy of ``source`` under the demo directory whose trust
        files and database are the demo's own, whatever ``source`` names (the demo deletes
        its database at every start: it must never be one of the user's) and from whatever
        directory the demo runs; with ``--port``, its API, simulator and receiver moved."""
        try:
            doc = yaml.safe_load(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"{source}: cannot read it: {e}") from None
        if isinstance(doc, dict):
            if self.port != DEFAULT_PORT:
                _move(doc, Layout(DEFAULT_PORT, self.directory), self)
            self._own(doc)
        self.config_copy.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return self.config_copy

    def _own(self, doc: dict[str, Any]) -> None:
        """Point ``doc`` at the demo's trust files and database (absolute paths: the copy
        reads the same from anywhere)."""
        trust = doc.setdefault("trust", {})
        if isinstance(trust, dict):
            for name in ("trusted_root", "signing_config"):
                trust[name] = str((self.trust_dir / f"{name}.json").resolve())
        database = doc.setdefault("database", {})
        if isinstance(database, dict):
            database["url"] = f"sqlite+aiosqlite:///{self.database.resolve()}"

    def check(self, settings: Settings, source: Path) -> tuple[bytes, ...]:
        """That ``settings`` fit this layout (its trust files, its database, a v1 log at the
        simulator, a webhook sink at the receiver); the secrets of that sink. The demo
        deletes its database at every start: it must never be a database of the user's."""
        problems = []
        for name, given in (
            ("trusted_root", settings.trust.trusted_root),
            ("signing_config", settings.trust.signing_config),
        ):
            if not _same(given, self.trust_dir / f"{name}.json"):
                problems.append(f"trust.{name} must be {self.trust_dir / f'{name}.json'}")
        url = settings.database.sqlalchemy_url()
        if url.get_backend_name() != "sqlite" or not _same(url.database or "", self.database):
            problems.append(f"database.url must be sqlite+aiosqlite:///{self.database}")
        if not any(log.api == "v1" and log.url == self.sim_url for log in settings.logs):
            problems.append(f"logs: no v1 log at the simulator, {self.sim_url}")
        sink = next(
            (
                s
                for s in settings.alerts.sinks
                if s.type == "webhook" and s.endpoint() == self.receiver_url
            ),
            None,
        )
        if sink is None or sink.secret is None:
            problems.append(f"alerts.sinks: no webhook sink at the receiver, {self.receiver_url}")
        if problems:
            raise ConfigError(f"{source} does not fit the demo: " + "; ".join(problems))
        assert sink is not None
        assert sink.secret is not None
        return parse_secrets(sink.secret.get_secret_value())


def _same(given: str, wanted: Path) -> bool:
    return Path(given).resolve() == wanted.resolve()


def _move(doc: dict[str, Any], old: Layout, new: Layout) -> None:
    """Point ``doc`` (a raw configuration) at ``new``'s ports where it names ``old``'s."""
    server = doc.get("server")
    if isinstance(server, dict) and server.get("listen") == f"{HOST}:{old.port}":
        server["listen"] = f"{HOST}:{new.port}"
    for log in doc.get("logs") or ():
        url = log.get("url") if isinstance(log, dict) else None
        if isinstance(url, str) and (url == old.sim_url or url.startswith(old.sim_url + "/")):
            log["url"] = new.sim_url + url[len(old.sim_url) :]  # v2 shards are under it
    alerts = doc.get("alerts")
    for sink in (alerts.get("sinks") or ()) if isinstance(alerts, dict) else ():
        if isinstance(sink, dict) and sink.get("url") == old.receiver_url:
            sink["url"] = new.receiver_url
