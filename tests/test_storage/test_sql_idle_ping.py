"""A pooled PostgreSQL connection that is dead is replaced at checkout, never handed out (PostgreSQL
only: SQLite has no server to drop a connection).

The server ends every connection of this test's schema (as a restart or an idle-session timeout
would). A connection the driver already knows is closed is replaced without a round trip; one idle
past ``idle_ping_s`` is also pinged first. Connections in steady use are not pinged (the old
pre-ping cost three round trips per transaction).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.sql.db import Database
from tests.fixtures.sql import _pg_execute, pg_url


async def _kill_connections_of(schema: str) -> None:
    await _pg_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE pid <> pg_backend_pid() AND application_name = '{schema}'"
    )


def _named(schema: str) -> tuple[str, str]:
    """The schema's URL, its connections named after it in pg_stat_activity."""
    return f"{pg_url()}?search_path={schema}&application_name={schema}", schema


async def _pings(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


async def test_an_idle_connection_killed_by_the_server_is_replaced(pg_schema: str) -> None:
    url, schema = _named(pg_schema)
    db = Database(url, idle_ping_s=0.2)
    try:
        assert await _pings(db) == 1
        await _kill_connections_of(schema)
        await asyncio.sleep(0.3)
        assert await _pings(db) == 1  # pinged, found dead, replaced: the caller never saw it
    finally:
        await db.dispose()


async def test_a_connection_closed_in_steady_use_is_replaced_without_a_ping(pg_schema: str) -> None:
    url, schema = _named(pg_schema)
    db = Database(url, idle_ping_s=60)  # no ping: it was used a moment ago
    try:
        assert await _pings(db) == 1
        await _kill_connections_of(schema)
        await asyncio.sleep(0.1)  # the server's goodbye reaches the driver
        assert await _pings(db) == 1  # the driver knew it was closed: replaced at checkout
    finally:
        await db.dispose()
