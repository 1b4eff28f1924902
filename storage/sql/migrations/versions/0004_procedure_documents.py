"""Procedure documents (uploads in the chat or by link, generated PDFs) and the answers a student
entered in a procedure.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Types are spelled here (as in 0001) rather than imported from ``storage.sql.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("slot", sa.String(32), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("source IN ('chat', 'link', 'generated')", name=op.f("ck_documents_source")),
        sa.ForeignKeyConstraint(["openid"], ["students.openid"], name=op.f("fk_documents_openid_students"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_openid"), "documents", ["openid"], unique=False)
    with op.batch_alter_table("procedures") as batch:
        batch.add_column(sa.Column("answers", DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("procedures") as batch:
        batch.drop_column("answers")
    op.drop_index(op.f("ix_documents_openid"), table_name="documents")
    op.drop_table("documents")
