"""PostgreSQL connections that sat idle are pinged on checkout; a dead one is replaced, not used.

The server ends every connection of this test's schema (as a restart or an idle-session timeout
would). A connection idle past ``idle_ping_s`` is pinged, found dead and replaced, so the next
transaction works. Busy connections are not pinged (the old pre-ping cost three round trips per
transaction), so a connection killed while in steady use fails once and the pool recovers.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc, text

from storage.sql.db import Database
from tests.fixtures.sql import _pg_execute


async def _kill_connections_of(schema: str) -> None:
    await _pg_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE pid <> pg_backend_pid() AND application_name = '{schema}'"
    )


def _named(url: str) -> tuple[str, str]:
    schema = url.rsplit("search_path=", 1)[1]
    return f"{url}&application_name={schema}", schema


async def _pings(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


async def test_an_idle_connection_killed_by_the_server_is_replaced(sql_url: str) -> None:
    if not sql_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no server to drop the connection")
    url, schema = _named(sql_url)
    db = Database(url, idle_ping_s=0.2)
    try:
        assert await _pings(db) == 1
        await _kill_connections_of(schema)
        await asyncio.sleep(0.3)
        assert await _pings(db) == 1  # pinged, found dead, replaced: the caller never saw it
    finally:
        await db.dispose()


async def test_a_busy_connection_is_not_pinged_and_a_dead_one_fails_once(sql_url: str) -> None:
    if not sql_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    url, schema = _named(sql_url)
    db = Database(url, idle_ping_s=60)
    try:
        assert await _pings(db) == 1
        await _kill_connections_of(schema)
        with pytest.raises(exc.DBAPIError):
            await _pings(db)  # not pinged: it was used a moment ago
        assert await _pings(db) == 1  # the pool dropped it; the next transaction has a new one
    finally:
        await db.dispose()
