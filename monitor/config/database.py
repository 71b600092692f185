"""The database settings: its URL, a password kept out of it, the pool, migrations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from monitor.config.base import ConfigModel
from monitor.config.fields import EnvName, Shown
from monitor.config.problems import Problem, error

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/monitor.db"
# as monitor.storage.engine accepts them (it maps each to its async driver)
DATABASE_DRIVERS = ("sqlite", "sqlite+aiosqlite", "postgres", "postgresql", "postgresql+asyncpg")


def _database_url(value: str) -> str:
    """Never echoes the URL: it may hold a password."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise error("not a database URL, such as sqlite+aiosqlite:///data/monitor.db") from None
    if url.drivername not in DATABASE_DRIVERS:
        raise error(
            "must be a SQLite (sqlite+aiosqlite:///path) or PostgreSQL "
            "(postgresql+asyncpg://user@host/db) URL"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise error("SQLite needs a file (sqlite+aiosqlite:///path): not an in-memory database")
    return value


class DatabaseSettings(ConfigModel):
    """Where findings, history and the monitor's state are stored."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("password", "password_env"),)

    url: Annotated[str, AfterValidator(_database_url), Shown("database URL")] = Field(
        default=DEFAULT_DATABASE_URL,
        description="`sqlite+aiosqlite:///path` (relative to the configuration file's "
        "directory; four slashes before an absolute path) or "
        "`postgresql+asyncpg://user@host:5432/dbname`. `sqlite://` and `postgresql://` mean "
        "the same. Shown with any password masked.",
    )
    password: SecretStr | None = Field(
        default=None,
        description="The PostgreSQL password (not for SQLite). Better in `password_env`; or in "
        "the URL, but only once.",
    )
    password_env: EnvName | None = None
    pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connections kept open.")
    migrate_on_start: bool = Field(
        default=True,
        description="Apply pending migrations at start. Set `false` to run "
        "`tlog-monitor db upgrade` yourself, e.g. when the monitor's database user may not "
        "alter the schema; the monitor then refuses a database that is not at the latest "
        "revision.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        url = raw.get("url", DEFAULT_DATABASE_URL)
        given = next((k for k in ("password_env", "password") if raw.get(k) is not None), None)
        if given is None or not isinstance(url, str):
            return []
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            return []
        if parsed.get_backend_name() == "sqlite":
            return [Problem((given,), "a SQLite database has no password")]
        if parsed.password is not None:
            return [Problem((given,), "the url already holds a password; give it once")]
        return []

    def sqlalchemy_url(self) -> URL:
        """The URL to connect with, password included (keep it out of logs)."""
        url = make_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    def masked_url(self) -> str:
        """The URL to show people: any password replaced by ``***``."""
        return self.sqlalchemy_url().render_as_string(hide_password=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, (self.masked_url() if key == "url" else value)
