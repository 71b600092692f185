"""The monitor's own verified checkpoints, for ``images check`` to prove a log's tree
consistent with: read from the configured database when there is one (the daemon's), each
note's signature checked again with the trust root's keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from monitor.cli.database import opened_store, sqlite_file
from monitor.config.models import Settings
from monitor.core.errors import MonitorError
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.trust import TrustRoot

if TYPE_CHECKING:
    from monitor.storage.ports import LogsReader

RECENT = 20  # stored checkpoints looked at for the newest verified one


@asynccontextmanager
async def stored_checkpoints(
    settings: Settings, trust: TrustRoot
) -> AsyncIterator[tuple[StoredOurs | None, str | None]]:
    """(ours, note): ``ours`` reads the database of ``settings`` (None when there is none
    yet); ``note`` says why it could not be read."""
    url = settings.database.sqlalchemy_url().render_as_string(hide_password=False)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        yield None, None  # no monitor has run with this configuration: nothing to compare
        return
    async with AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(opened_store(url))
        except MonitorError as e:
            yield None, f"not compared with the monitor's checkpoints: its database: {e}"
            return
        yield StoredOurs(store, trust), None


class StoredOurs:
    """``ours`` for ``LogTies``: the newest verified checkpoint stored for a log."""

    def __init__(self, store: LogsReader, trust: TrustRoot) -> None:
        self._store = store
        self._verifiers = trust.note_verifiers()

    async def __call__(self, log: str) -> SignedCheckpoint | None:
        try:
            stored = await self._store.checkpoints(log, RECENT)
        except MonitorError:
            return None
        for cp in stored:
            if cp.verified:
                try:
                    return open_checkpoint(cp.raw, self._verifiers)
                except MonitorError:
                    return None
        return None
