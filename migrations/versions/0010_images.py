"""Container images: the digests watched tags point at, their signatures tied to log
entries, and the registry passes.

``image_digests``: one row per (repository, tag, digest) a registry pass found (tag empty for
a platform manifest or a digest watched without a tag), with when it was first seen (kept:
an image's grace period starts there), last seen and last checked, its status and a summary.
``image_signatures``: a signature or attestation of a digest tied to a log entry (log empty
when the entry is in no configured log): the link that gives history its image references and
explains an entry to the orphan check. ``image_scans``: each pass, and whether it read every
watched tag. ``findings.image``: the image a registry finding is about.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "image_digests",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(160), nullable=False),
        sa.Column("index_digest", sa.String(160), nullable=True),
        sa.Column("platform", sa.Text(), nullable=True),
        sa.Column("first_seen", WHEN, nullable=False),
        sa.Column("last_seen", WHEN, nullable=False),
        sa.Column("last_checked", WHEN, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_digests"),
        sa.UniqueConstraint(
            "repository", "tag", "digest", name="uq_image_digests_repository_tag_digest"
        ),
    )
    op.create_index("ix_image_digests_digest", "image_digests", ["repository", "digest"])
    op.create_index(
        "ix_image_digests_index_digest", "image_digests", ["repository", "index_digest"]
    )
    op.create_table(
        "image_signatures",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(160), nullable=False),
        sa.Column("log", sa.String(255), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("signer", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("tie", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("first_seen", WHEN, nullable=False),
        sa.Column("last_seen", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_signatures"),
        sa.UniqueConstraint(
            "repository",
            "digest",
            "log",
            "log_index",
            "role",
            name="uq_image_signatures_repository_digest_log_log_index_role",
        ),
    )
    op.create_index("ix_image_signatures_entry", "image_signatures", ["log", "log_index"])
    op.create_index(
        "ix_image_signatures_repository", "image_signatures", ["repository", "digest"]
    )
    op.create_table(
        "image_scans",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_image_scans"),
    )
    op.create_index(
        "ix_image_scans_repository", "image_scans", ["repository", "complete", "started_at"]
    )
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("image", DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("image")
    op.drop_index("ix_image_scans_repository", table_name="image_scans")
    op.drop_table("image_scans")
    op.drop_index("ix_image_signatures_repository", table_name="image_signatures")
    op.drop_index("ix_image_signatures_entry", table_name="image_signatures")
    op.drop_table("image_signatures")
    op.drop_index("ix_image_digests_index_digest", table_name="image_digests")
    op.drop_index("ix_image_digests_digest", table_name="image_digests")
    op.drop_table("image_digests")
