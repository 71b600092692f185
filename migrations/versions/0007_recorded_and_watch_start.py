"""Expected uses are records, and each log remembers where watching began.

An ``expected_use`` finding (a signature a rule allows) is a record, not a task: it is stored
in the state ``recorded``, which no triage queue (``state=open``) lists. Expected uses stored
open or acknowledged before are moved there; resolved ones stay resolved. The downgrade
opens them again, as they were stored before.

``logs.first_index`` and ``logs.first_at``: the index the monitor began tailing the log at,
and when, so that history can say what it searched (entries before it are in the database
only if backfilled). Logs tailed before this revision leave them empty: where they began
was not kept.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-11
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
FINDINGS = sa.table("findings", sa.column("kind", sa.String), sa.column("state", sa.String))


def upgrade() -> None:
    # in place on both engines (SQLite adds a nullable column without copying the table)
    op.add_column("logs", sa.Column("first_index", sa.BigInteger(), nullable=True))
    op.add_column("logs", sa.Column("first_at", WHEN, nullable=True))
    op.execute(
        FINDINGS.update()
        .where(
            FINDINGS.c.kind == "expected_use",
            FINDINGS.c.state.in_(("open", "acknowledged")),
        )
        .values(state="recorded")
    )


def downgrade() -> None:
    op.execute(FINDINGS.update().where(FINDINGS.c.state == "recorded").values(state="open"))
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # no DROP COLUMN before SQLite 3.35: copy the table (refused while rows of other
        # tables refer to it, foreign keys being on)
        with op.batch_alter_table("logs") as batch:
            batch.drop_column("first_at")
            batch.drop_column("first_index")
        return
    # in place: a copy of logs would be a DROP TABLE that every referring row refuses
    op.drop_column("logs", "first_at")
    op.drop_column("logs", "first_index")
