"""Privacy: when a student's data was erased, and when retention removed a photo's files.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Both are plain nullable columns: adding them is instant on PostgreSQL and, on SQLite, a batch rebuild
of two tables that are small next to the file store.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("students") as batch:
        batch.add_column(sa.Column("erased_at", TS, nullable=True))
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("files_deleted_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("files_deleted_at")
    with op.batch_alter_table("students") as batch:
        batch.drop_column("erased_at")
