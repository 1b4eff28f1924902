"""Staff console: staff accounts, review queue, template notifications, procedure windows, broadcasts
and their per-recipient rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Types are spelled here (as in 0001) rather than imported from ``storage.sql.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PENDING = sa.text("state = 'pending'")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIGID, autoincrement=True, nullable=False)


def _in(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def _student_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["openid"], ["students.openid"], name=op.f(f"fk_{table}_openid_students"),
                                   ondelete="CASCADE")


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    _staff()
    _reviews()
    _notifications()
    _broadcasts()


def _staff() -> None:
    op.create_table(
        "staff_users",
        _id(),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("schools", DOC, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS, nullable=True),
        _in("staff_users", "role", ("reviewer", "admin")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )


def _reviews() -> None:
    op.create_table(
        "reviews",
        _id(),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("photo_id", sa.BigInteger(), nullable=True),
        sa.Column("documents", DOC, nullable=False),
        sa.Column("school_code", sa.String(16), nullable=True),
        sa.Column("cohort", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("reasons", DOC, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _in("reviews", "state", ("pending", "approved", "rejected", "superseded")),
        _student_fk("reviews"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name=op.f("fk_reviews_photo_id_photos"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    _index("reviews", "openid")
    _index("reviews", "school_code")
    op.create_index("ix_reviews_state_submitted_at", "reviews", ["state", "submitted_at"], unique=False)
    op.create_index("uq_reviews_pending_per_procedure", "reviews", ["openid", "procedure"], unique=True,
                    postgresql_where=PENDING, sqlite_where=PENDING)


def _notifications() -> None:
    op.create_table(
        "notifications",
        _id(),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("data", DOC, nullable=False),
        sa.Column("url", sa.String(512), nullable=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.BigInteger(), nullable=True),
        sa.Column("delivery", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        _in("notifications", "state", ("pending", "sent", "failed")),
        _student_fk("notifications"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("client_msg_id", name=op.f("uq_notifications_client_msg_id")),
        sa.UniqueConstraint("token", name=op.f("uq_notifications_token")),
    )
    _index("notifications", "msgid")
    _index("notifications", "openid")


def _broadcasts() -> None:
    op.create_table(
        "procedure_windows",
        _id(),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("school_code", sa.String(16), nullable=False),
        sa.Column("cohort", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Date(), nullable=False),
        sa.Column("closes", sa.Date(), nullable=False),
        sa.Column("remind_days", DOC, nullable=False),
        sa.Column("remind_template", sa.String(64), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("closes >= opens", name=op.f("ck_procedure_windows_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_windows")),
        sa.UniqueConstraint("procedure", "school_code", "cohort",
                            name=op.f("uq_procedure_windows_procedure_school_code_cohort")),
    )
    op.create_table(
        "broadcasts",
        _id(),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("variables", DOC, nullable=False),
        sa.Column("audience", DOC, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("send_at", TS, nullable=False),
        sa.Column("rate", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("window_id", sa.BigInteger(), nullable=True),
        sa.Column("days_before", sa.Integer(), nullable=True),
        _in("broadcasts", "state", ("scheduled", "sending", "paused", "done", "cancelled")),
        sa.CheckConstraint("rate > 0", name=op.f("ck_broadcasts_rate_positive")),
        sa.ForeignKeyConstraint(["window_id"], ["procedure_windows.id"],
                                name=op.f("fk_broadcasts_window_id_procedure_windows"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        sa.UniqueConstraint("window_id", "days_before", name=op.f("uq_broadcasts_window_id_days_before")),
    )
    op.create_table(
        "broadcast_recipients",
        _id(),
        sa.Column("broadcast_id", sa.BigInteger(), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("msgid", sa.BigInteger(), nullable=True),
        sa.Column("delivery", sa.String(64), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        _in("broadcast_recipients", "state", ("pending", "sent", "failed")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_recipients")),
        sa.UniqueConstraint("broadcast_id", "openid", name=op.f("uq_broadcast_recipients_broadcast_id_openid")),
    )
    _index("broadcast_recipients", "msgid")
    op.create_index("ix_broadcast_recipients_broadcast_id_state", "broadcast_recipients",
                    ["broadcast_id", "state", "id"], unique=False)


def downgrade() -> None:
    for table in ("broadcast_recipients", "broadcasts", "procedure_windows", "notifications", "reviews",
                  "staff_users"):
        op.drop_table(table)
