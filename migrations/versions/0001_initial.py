"""The initial schema.

Logs, checkpoints, entries and their identities, findings, the alert
outbox and its delivery attempts, malformed entries, and index_all.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
LOG = sa.String(255)
VALUE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("name", LOG, nullable=False),
        sa.Column("api", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("verified_size", sa.BigInteger(), nullable=True),
        sa.Column("verified_root", sa.LargeBinary(), nullable=True),
        sa.Column("verified_checkpoint", sa.Text(), nullable=True),
        sa.Column("compact_size", sa.BigInteger(), nullable=False),
        sa.Column("compact_hashes", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_logs"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("log", LOG, nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["log"], ["logs.name"], name="fk_checkpoints_log_logs"),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        sa.UniqueConstraint("log", "size", "root", name="uq_checkpoints_log_size_root"),
    )
    op.create_index("ix_checkpoints_log_seen_at", "checkpoints", ["log", "seen_at"])
    op.create_table(
        "entries",
        sa.Column("log", LOG, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("integrated_time", sa.BigInteger(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("api_version", sa.Text(), nullable=False),
        sa.Column("san", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("key_fingerprint", sa.Text(), nullable=True),
        sa.Column("cert_fingerprint", sa.Text(), nullable=True),
        sa.Column("record", DOC, nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["log"], ["logs.name"], name="fk_entries_log_logs"),
        sa.PrimaryKeyConstraint("log", "idx", name="pk_entries"),
    )
    op.create_index("ix_entries_time", "entries", ["time", "log", "idx"])
    op.create_table(
        "entry_identities",
        sa.Column("log", LOG, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("field", sa.String(128), nullable=False),
        sa.Column("value", VALUE, nullable=False),
        sa.ForeignKeyConstraint(
            ["log", "idx"],
            ["entries.log", "entries.idx"],
            name="fk_entry_identities_entry",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("log", "idx", "field", "value", name="pk_entry_identities"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_entry_identities_lookup", "entry_identities", ["field", "value", "log", "idx"]
    )
    op.create_table(
        "findings",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(255), nullable=True),
        sa.Column("log", LOG, nullable=True),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("dedup_key", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_changed_by", sa.Text(), nullable=True),
        sa.Column("state_changed_at", WHEN, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("matched", DOC, nullable=False),
        sa.Column("unmet", DOC, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", DOC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.UniqueConstraint("dedup_key", name="uq_findings_dedup_key"),
    )
    op.create_index("ix_findings_state", "findings", ["state", "id"])
    op.create_index("ix_findings_severity", "findings", ["severity", "id"])
    op.create_index("ix_findings_kind", "findings", ["kind", "id"])
    op.create_index("ix_findings_rule", "findings", ["rule", "id"])
    op.create_index("ix_findings_log", "findings", ["log", "idx"])
    op.create_index("ix_findings_created_at", "findings", ["created_at"])
    op.create_table(
        "outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(128), nullable=False),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("payload", DOC, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("dead_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dedup_key"], ["findings.dedup_key"], name="fk_outbox_dedup_key_findings"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedup_key", "sink", name="uq_outbox_dedup_key_sink"),
    )
    op.create_index(
        "ix_outbox_due", "outbox", ["sink", "delivered_at", "dead_at", "next_attempt_at"]
    )
    op.create_index("ix_outbox_dead_at", "outbox", ["dead_at"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name="fk_delivery_attempts_outbox_id_outbox",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_outbox", "delivery_attempts", ["outbox_id", "at"])
    op.create_table(
        "malformed_entries",
        sa.Column("log", LOG, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("api_version", sa.Text(), nullable=True),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["log"], ["logs.name"], name="fk_malformed_entries_log_logs"),
        sa.PrimaryKeyConstraint("log", "idx", name="pk_malformed_entries"),
    )
    op.create_table(
        "index_all",
        sa.Column("log", LOG, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("san", VALUE, nullable=True),
        sa.Column("issuer", VALUE, nullable=True),
        sa.Column("key_fingerprint", VALUE, nullable=True),
        sa.Column("digest", VALUE, nullable=True),
        sa.PrimaryKeyConstraint("log", "idx", name="pk_index_all"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_index_all_san", "index_all", ["san", "log", "idx"])
    op.create_index("ix_index_all_issuer", "index_all", ["issuer", "log", "idx"])
    op.create_index("ix_index_all_key_fingerprint", "index_all", ["key_fingerprint", "log", "idx"])
    op.create_index("ix_index_all_digest", "index_all", ["digest", "log", "idx"])
    op.create_index("ix_index_all_time", "index_all", ["time"])


def downgrade() -> None:
    op.drop_table("index_all")
    op.drop_table("malformed_entries")
    op.drop_table("delivery_attempts")
    op.drop_table("outbox")
    op.drop_table("findings")
    op.drop_table("entry_identities")
    op.drop_table("entries")
    op.drop_table("checkpoints")
    op.drop_table("logs")
