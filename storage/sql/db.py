"""The async engine wrapper: one per process, built from a URL, handed to repositories as connections.

``async with db.begin() as conn`` is a write transaction, ``async with db.read() as conn`` a read
one. On SQLite a write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front
and waits (``busy_timeout``) instead of failing later with "database is locked" when a read lock
must be upgraded, which ``busy_timeout`` cannot resolve. PostgreSQL URLs may carry
``?search_path=schema`` (our extension; asyncpg takes it as a server setting), so a deployment or a
test run can live in its own schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000
_WRITE = "gradbot_write"


class Database:
    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        parsed, connect_args = _prepare(make_url(url))
        self.url = parsed
        self.engine: AsyncEngine = create_async_engine(
            parsed, echo=echo, connect_args=connect_args, pool_pre_ping=not _is_sqlite(parsed)
        )
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return _is_sqlite(self.url)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: commits on normal exit, rolls back on an exception."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispose()


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _prepare(url: URL) -> tuple[URL, dict[str, Any]]:
    if _is_sqlite(url):
        _make_parent(url)
        return url, {}
    search_path = url.query.get("search_path")
    if isinstance(search_path, str) and search_path:
        url = url.difference_update_query(["search_path"])
        return url, {"server_settings": {"search_path": search_path}}
    return url, {}


def _make_parent(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver's legacy implicit BEGIN skips DDL and SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching a fresh file to WAL needs a lock another worker may hold.
        # synchronous stays FULL (the default): a committed payment must survive a power cut.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
