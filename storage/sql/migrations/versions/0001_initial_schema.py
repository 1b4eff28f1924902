"""Initial schema: students, identity bindings, schools, school links, verifications, audit log,
procedure progress, photos, orders and order events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are spelled here rather than imported from ``storage.sql.tables`` so this file keeps meaning
what it meant when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OPEN_ORDER = sa.text("state = 'created'")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIGID, autoincrement=True, nullable=False)


def _student_fk(table: str, ondelete: str | None = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["openid"], ["students.openid"], name=op.f(f"fk_{table}_openid_students"), ondelete=ondelete
    )


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    _reference_tables()
    _student_tables()
    _work_tables()
    _order_tables()


def _reference_tables() -> None:
    op.create_table(
        "audit_log",
        _id(),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("openid", sa.String(64), nullable=True),
        sa.Column("details", DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    _index("audit_log", "at")
    _index("audit_log", "openid")
    op.create_table(
        "schools",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("province", sa.String(32), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("aliases", DOC, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_schools")),
    )
    _index("schools", "name")
    op.create_index("ix_schools_province_city", "schools", ["province", "city"], unique=False)


def _student_tables() -> None:
    op.create_table(
        "students",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("followed_at", TS, nullable=True),
        sa.Column("unfollowed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_students")),
    )
    op.create_table(
        "identity_bindings",
        _id(),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("id_type", sa.String(24), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("name_masked", sa.String(64), nullable=False),
        sa.Column("id_enc", sa.Text(), nullable=False),
        sa.Column("id_masked", sa.String(40), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _student_fk("identity_bindings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_bindings")),
        sa.UniqueConstraint("id_hmac", name=op.f("uq_identity_bindings_id_hmac")),
        sa.UniqueConstraint("openid", name=op.f("uq_identity_bindings_openid")),
    )
    _index("identity_bindings", "key_id")
    op.create_table(
        "school_links",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("school_code", sa.String(16), nullable=True),
        sa.Column("school_name", sa.String(128), nullable=False),
        sa.Column("education_type", sa.String(24), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("cohort", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _student_fk("school_links"),
        sa.ForeignKeyConstraint(["school_code"], ["schools.code"],
                                name=op.f("fk_school_links_school_code_schools")),
        sa.PrimaryKeyConstraint("openid", name=op.f("pk_school_links")),
    )
    _index("school_links", "school_code")
    op.create_table(
        "verifications",
        _id(),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("binding_id", sa.BigInteger(), nullable=False),
        sa.Column("binding_version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.Column("details", DOC, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('match', 'mismatch', 'no_record', 'invalid', 'unsupported', 'error')",
            name=op.f("ck_verifications_outcome"),
        ),
        _student_fk("verifications"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    _index("verifications", "openid")


def _work_tables() -> None:
    op.create_table(
        "procedures",
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("next_step", sa.String(200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        _student_fk("procedures"),
        sa.PrimaryKeyConstraint("openid", "name", name=op.f("pk_procedures")),
    )
    op.create_table(
        "photos",
        _id(),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("fixed_sha256", sa.String(64), nullable=True),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("fixable", sa.Boolean(), nullable=False),
        sa.Column("checks", DOC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'rejected')", name=op.f("ck_photos_status")),
        _student_fk("photos"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
    )
    _index("photos", "openid")


def _order_tables() -> None:
    op.create_table(
        "orders",
        _id(),
        sa.Column("out_trade_no", sa.String(32), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("procedure", sa.String(32), nullable=False),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("prepay_id", sa.String(64), nullable=True),
        sa.Column("prepay_expires_at", TS, nullable=True),
        sa.Column("code_url", sa.String(256), nullable=True),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("payer_openid", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint("state IN ('created', 'paid', 'closed', 'refunded')",
                           name=op.f("ck_orders_state")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_orders_amount_positive")),
        sa.CheckConstraint("length(out_trade_no) BETWEEN 6 AND 32",
                           name=op.f("ck_orders_out_trade_no_length")),
        _student_fk("orders", ondelete=None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_orders_out_trade_no")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_orders_transaction_id")),
    )
    _index("orders", "openid")
    op.create_index("uq_orders_open_per_item", "orders", ["openid", "item"], unique=True,
                    postgresql_where=OPEN_ORDER, sqlite_where=OPEN_ORDER)
    op.create_table(
        "order_events",
        _id(),
        sa.Column("out_trade_no", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("details", DOC, nullable=False),
        sa.ForeignKeyConstraint(["out_trade_no"], ["orders.out_trade_no"],
                                name=op.f("fk_order_events_out_trade_no_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    _index("order_events", "out_trade_no")


def downgrade() -> None:
    for table in ("order_events", "orders", "photos", "procedures", "verifications", "school_links",
                  "identity_bindings", "students", "schools", "audit_log"):
        op.drop_table(table)
