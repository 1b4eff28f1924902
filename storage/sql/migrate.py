"""Alembic, driven from code: upgrade, current revision, head, and the schema-vs-metadata diff.

``ensure_schema`` is safe on every start and with several workers starting at once: the upgrade
runs in one transaction that first takes a lock, so a second worker waits, then finds the schema
at head and does nothing. PostgreSQL: a transaction-scoped advisory lock keyed by the schema.
SQLite: ``BEGIN IMMEDIATE`` (``Database.begin``) holds the single write lock for the whole upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.sql.db import Database
from storage.sql.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
# First half of the two-int advisory lock key ("gb"); the second half is the schema's hash.
_LOCK_CLASS = 0x6762


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return revision


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:cls, hashtext(current_schema()))"), {"cls": _LOCK_CLASS}
        )


def _upgrade(connection: Connection, revision: str) -> None:
    _lock(connection)
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database, revision: str = "head") -> str | None:
    async with db.begin() as conn:
        await conn.run_sync(_upgrade, revision)
        return await conn.run_sync(_current)


async def current(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(_current)


async def ensure_schema(target: str | Database) -> str | None:
    """Upgrade to head (no-op when already there). Accepts a URL or an open ``Database``."""
    if isinstance(target, Database):
        return await upgrade(target)
    async with Database(target) as db:
        return await upgrade(db)


def _diff(connection: Connection, target: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, target))


async def schema_diff(db: Database, target: sa.MetaData = metadata) -> list[Any]:
    """What autogenerate would change to reach the table definitions; empty when they agree."""
    async with db.read() as conn:
        return await conn.run_sync(_diff, target)
