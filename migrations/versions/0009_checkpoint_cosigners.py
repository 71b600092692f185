"""Each checkpoint records who cosigned it.

``checkpoints.cosigners``: the witness cosignatures found on the note when the monitor stored
it, checked against the log's witness policy of that moment (a JSON list of witness, key ID,
time, status and reason); NULL where no witnesses were configured, as on every row stored
before this revision. A checkpoint seen again with more verified cosignatures keeps the
better-witnessed note.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("cosigners", DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("cosigners")
