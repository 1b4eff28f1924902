"""Alembic environment for gradbot. Only the programmatic path is supported (``storage.sql.migrate``):

it hands over a connection that is already inside a transaction holding the migration lock, so
the whole upgrade is one transaction on both backends (PostgreSQL and SQLite both have
transactional DDL). Use ``gradbot db upgrade`` rather than the ``alembic`` command line.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.sql.tables import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table (named constraints help).
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(_connection, Connection):
    raise RuntimeError("run migrations with `gradbot db upgrade` (storage.sql.migrate), not alembic's CLI")
run(_connection)
