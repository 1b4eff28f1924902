"""Alembic migrations on both backends: from empty to head, idempotent, race-safe, matching the tables."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from storage.sql import migrate
from storage.sql.db import Database
from storage.sql.tables import metadata


async def _tables(db: Database) -> set[str]:
    async with db.read() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_empty_creates_every_table(sql_url: str) -> None:
    async with Database(sql_url) as db:
        assert await migrate.current(db) is None
        assert await migrate.ensure_schema(db) == migrate.head()
        assert await migrate.current(db) == migrate.head()
        assert await _tables(db) == set(metadata.tables) | {"alembic_version"}


async def test_head_matches_table_definitions(sql_db: Database) -> None:
    assert await migrate.schema_diff(sql_db) == []


async def test_diff_notices_a_table_the_migrations_lack(sql_db: Database) -> None:
    # Guards the test above: the comparison must be able to see a difference at all.
    extra = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(extra)
    sa.Table("not_in_migrations", extra, sa.Column("id", sa.Integer, primary_key=True))
    diff = await migrate.schema_diff(sql_db, extra)
    assert [d[0] for d in diff] == ["add_table"]
    assert diff[0][1].name == "not_in_migrations"


async def test_ensure_schema_by_url_is_idempotent(sql_url: str) -> None:
    assert await migrate.ensure_schema(sql_url) == migrate.head()
    assert await migrate.ensure_schema(sql_url) == migrate.head()


async def test_two_workers_starting_at_once_both_succeed(sql_url: str) -> None:
    first, second = Database(sql_url), Database(sql_url)
    try:
        results = await asyncio.gather(migrate.ensure_schema(first), migrate.ensure_schema(second))
        assert list(results) == [migrate.head(), migrate.head()]
        assert await migrate.schema_diff(first) == []
    finally:
        await first.dispose()
        await second.dispose()
