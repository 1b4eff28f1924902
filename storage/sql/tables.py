"""Table definitions (SQLAlchemy Core). Alembic migrations under ``migrations/`` must match these.

Constraint names come from one naming convention so that migrations can drop or alter them by name
on PostgreSQL and in SQLite batch mode alike. Personal data (names, ID numbers) never sits in a
column in clear: ``*_enc`` columns hold AES-GCM tokens (see ``crypto.py``), ``id_hmac`` a keyed hash
for uniqueness, and ``*_masked`` columns what a console list may show.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ORDER_STATES = ("created", "paid", "closed", "refunded")
PHOTO_STATUSES = ("pending", "accepted", "rejected")
# Shapes every name+ID verifier shares (reference/pay-notify-identity.md §5); "unsupported" marks
# documents no provider checks (passports, HK/MO/TW permits), which go to staff review.
VERIFICATION_OUTCOMES = ("match", "mismatch", "no_record", "invalid", "unsupported", "error")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite would otherwise hand back naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _student_fk(ondelete: str | None = "CASCADE") -> sa.Column[str]:
    fk = sa.ForeignKey("students.openid", ondelete=ondelete)
    return sa.Column("openid", sa.String(64), fk, nullable=False, index=True)


students = sa.Table(
    "students",
    metadata,
    sa.Column("openid", sa.String(64), primary_key=True),
    sa.Column("following", sa.Boolean, nullable=False),
    sa.Column("followed_at", UtcDateTime, nullable=True),
    sa.Column("unfollowed_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("erased_at", UtcDateTime, nullable=True),  # the student had their data erased (docs/privacy.md)
)

identity_bindings = sa.Table(
    "identity_bindings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("openid", sa.String(64), sa.ForeignKey("students.openid", ondelete="CASCADE"),
              nullable=False, unique=True),
    sa.Column("id_type", sa.String(24), nullable=False),
    sa.Column("name_enc", sa.Text, nullable=False),
    sa.Column("name_masked", sa.String(64), nullable=False),
    sa.Column("id_enc", sa.Text, nullable=False),
    sa.Column("id_masked", sa.String(40), nullable=False),
    sa.Column("id_hmac", sa.String(64), nullable=False, unique=True),
    sa.Column("key_id", sa.String(16), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

schools = sa.Table(
    "schools",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, index=True),
    sa.Column("province", sa.String(32), nullable=False),
    sa.Column("city", sa.String(64), nullable=False),
    sa.Column("authority", sa.String(64), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("aliases", JsonDoc, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_schools_province_city", "province", "city"),
)

school_links = sa.Table(
    "school_links",
    metadata,
    sa.Column("openid", sa.String(64), sa.ForeignKey("students.openid", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("school_code", sa.String(16), sa.ForeignKey("schools.code"), nullable=True, index=True),
    sa.Column("school_name", sa.String(128), nullable=False),
    sa.Column("education_type", sa.String(24), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("cohort", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

verifications = sa.Table(
    "verifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _student_fk(),
    # Which binding (and which version of it) was checked: a later change makes the result stale.
    sa.Column("binding_id", sa.BigInteger, nullable=False),
    sa.Column("binding_version", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("checked_at", UtcDateTime, nullable=False),
    sa.Column("details", JsonDoc, nullable=False),
    sa.CheckConstraint(_in("outcome", VERIFICATION_OUTCOMES), name="outcome"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    # No foreign key: the trail must outlive the student's other rows.
    sa.Column("openid", sa.String(64), nullable=True, index=True),
    sa.Column("details", JsonDoc, nullable=False),
)

procedures = sa.Table(
    "procedures",
    metadata,
    sa.Column("openid", sa.String(64), sa.ForeignKey("students.openid", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("next_step", sa.String(200), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("answers", JsonDoc, nullable=True),  # what the student entered (migration 0004)
)

photos = sa.Table(
    "photos",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _student_fk(),
    sa.Column("procedure", sa.String(32), nullable=False),
    sa.Column("original_sha256", sa.String(64), nullable=False),
    sa.Column("fixed_sha256", sa.String(64), nullable=True),
    sa.Column("profile", sa.String(32), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("fixable", sa.Boolean, nullable=False),
    sa.Column("checks", JsonDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("files_deleted_at", UtcDateTime, nullable=True),  # retention removed the files; checks stay
    sa.CheckConstraint(_in("status", PHOTO_STATUSES), name="status"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("out_trade_no", sa.String(32), nullable=False, unique=True),
    # No cascade: money records outlive an erased student (bookkeeping duty).
    _student_fk(ondelete=None),
    sa.Column("procedure", sa.String(32), nullable=False),
    sa.Column("item", sa.String(64), nullable=False),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("prepay_id", sa.String(64), nullable=True),
    sa.Column("prepay_expires_at", UtcDateTime, nullable=True),
    sa.Column("code_url", sa.String(256), nullable=True),
    sa.Column("transaction_id", sa.String(64), nullable=True, unique=True),
    sa.Column("payer_openid", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("paid_at", UtcDateTime, nullable=True),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.CheckConstraint(_in("state", ORDER_STATES), name="state"),
    sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    sa.CheckConstraint("length(out_trade_no) BETWEEN 6 AND 32", name="out_trade_no_length"),
    # A partial unique index: both backends support WHERE on an index, which keeps the rule in the
    # database instead of a check-then-insert race in code.
    sa.Index(
        "uq_orders_open_per_item", "openid", "item", unique=True,
        postgresql_where=sa.text("state = 'created'"), sqlite_where=sa.text("state = 'created'"),
    ),
)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("out_trade_no", sa.String(32), sa.ForeignKey("orders.out_trade_no"), nullable=False,
              index=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("details", JsonDoc, nullable=False),
)

# --- staff console, reviews, notifications and broadcasts (migration 0002) ----------------------

STAFF_ROLES = ("reviewer", "admin")
REVIEW_STATES = ("pending", "approved", "rejected", "superseded")
NOTIFICATION_STATES = ("pending", "sent", "failed")
BROADCAST_STATES = ("scheduled", "sending", "paused", "done", "cancelled")
RECIPIENT_STATES = ("pending", "sent", "failed")

staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # School codes a reviewer may see; admins see every school whatever this holds.
    sa.Column("schools", JsonDoc, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime, nullable=True),
    sa.CheckConstraint(_in("role", STAFF_ROLES), name="role"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _student_fk(),
    sa.Column("procedure", sa.String(32), nullable=False),
    sa.Column("photo_id", sa.BigInteger, sa.ForeignKey("photos.id", ondelete="SET NULL"), nullable=True),
    sa.Column("documents", JsonDoc, nullable=False),
    # Snapshot of the school link at submission: the queue is filtered by it (reviewers see their schools).
    sa.Column("school_code", sa.String(16), nullable=True, index=True),
    sa.Column("cohort", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("submitted_at", UtcDateTime, nullable=False),
    # A reviewer's lease on the item: nobody else gets it while claimed_until is in the future.
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", UtcDateTime, nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decided_at", UtcDateTime, nullable=True),
    sa.Column("reasons", JsonDoc, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.CheckConstraint(_in("state", REVIEW_STATES), name="state"),
    sa.Index("ix_reviews_state_submitted_at", "state", "submitted_at"),
    sa.Index(
        "uq_reviews_pending_per_procedure", "openid", "procedure", unique=True,
        postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"),
    ),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _student_fk(),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),  # what it is about, e.g. "review:12"
    sa.Column("template", sa.String(64), nullable=False),  # configured template name
    sa.Column("template_id", sa.String(64), nullable=False),
    sa.Column("data", JsonDoc, nullable=False),  # field values exactly as sent
    sa.Column("url", sa.String(512), nullable=True),
    sa.Column("token", sa.String(32), nullable=False, unique=True),  # the student's details page
    sa.Column("client_msg_id", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("errcode", sa.Integer, nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("msgid", sa.BigInteger, nullable=True, index=True),
    sa.Column("delivery", sa.String(64), nullable=True),  # TEMPLATESENDJOBFINISH Status
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    sa.CheckConstraint(_in("state", NOTIFICATION_STATES), name="state"),
)

procedure_windows = sa.Table(
    "procedure_windows",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("procedure", sa.String(32), nullable=False),
    sa.Column("school_code", sa.String(16), nullable=False),  # "*": every school
    sa.Column("cohort", sa.Integer, nullable=False),  # 0: every cohort
    sa.Column("opens", sa.Date, nullable=False),
    sa.Column("closes", sa.Date, nullable=False),
    sa.Column("remind_days", JsonDoc, nullable=False),  # automatic reminders N days before closing
    sa.Column("remind_template", sa.String(64), nullable=True),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("procedure", "school_code", "cohort"),
    sa.CheckConstraint("closes >= opens", name="order"),
)

broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("variables", JsonDoc, nullable=False),
    sa.Column("audience", JsonDoc, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),  # why paused
    sa.Column("send_at", UtcDateTime, nullable=False),
    sa.Column("rate", sa.Integer, nullable=False),  # messages per second
    sa.Column("total", sa.Integer, nullable=True),  # recipients, fixed when sending starts
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    # Automatic reminders: one per (window, days before closing).
    sa.Column("window_id", sa.BigInteger, sa.ForeignKey("procedure_windows.id", ondelete="CASCADE"),
              nullable=True),
    sa.Column("days_before", sa.Integer, nullable=True),
    sa.CheckConstraint(_in("state", BROADCAST_STATES), name="state"),
    sa.CheckConstraint("rate > 0", name="rate_positive"),
    sa.UniqueConstraint("window_id", "days_before"),
)

broadcast_recipients = sa.Table(
    "broadcast_recipients",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("broadcast_id", sa.BigInteger, sa.ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("openid", sa.String(64), nullable=False),  # no foreign key: a report outlives erasure
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("client_msg_id", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # A sender's lease (claimed_by set) or a retry's earliest time (claimed_by NULL).
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", UtcDateTime, nullable=True),
    sa.Column("errcode", sa.Integer, nullable=True),
    sa.Column("msgid", sa.BigInteger, nullable=True, index=True),
    sa.Column("delivery", sa.String(64), nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.CheckConstraint(_in("state", RECIPIENT_STATES), name="state"),
    sa.UniqueConstraint("broadcast_id", "openid"),
    # Senders claim the lowest pending ids of one broadcast: the index gives them in order.
    sa.Index("ix_broadcast_recipients_broadcast_id_state", "broadcast_id", "state", "id"),
)

# --- procedure documents: uploads and generated PDFs (migration 0004) ----------------------------

DOCUMENT_SOURCES = ("chat", "link", "generated")

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _student_fk(),
    sa.Column("procedure", sa.String(32), nullable=False),
    sa.Column("slot", sa.String(32), nullable=False),  # the dialog state that asked for it
    sa.Column("title", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=True),  # the choice made in a "one of" group
    sa.Column("sha256", sa.String(64), nullable=False),  # the file in the content-addressed store
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("files_deleted_at", UtcDateTime, nullable=True),  # retention removed the upload (migration 0005)
    sa.CheckConstraint(_in("source", DOCUMENT_SOURCES), name="source"),
)
