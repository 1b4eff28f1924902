"""The async engine wrapper: one per process, built from a URL, handed to repositories as connections.

``async with db.begin() as conn`` is a write transaction, ``async with db.read() as conn`` reads (on
PostgreSQL in autocommit: see ``Database.read``). On SQLite a write transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock up front and waits (``busy_timeout``) instead of failing later
with "database is locked" when a read lock must be upgraded, which ``busy_timeout`` cannot resolve.
PostgreSQL URLs may carry ``?search_path=schema`` (our extension; asyncpg takes it as a server
setting), so a deployment or a test run can live in its own schema, and ``&application_name=...`` to
name the connections in ``pg_stat_activity``.

A pooled PostgreSQL connection is pinged on checkout only when it has sat idle for
``idle_ping_s`` (1 s): SQLAlchemy's ``pool_pre_ping`` pinged every checkout, which with asyncpg is
three round trips (BEGIN, ``;``, ROLLBACK) before every transaction, a fifth of a web worker's CPU
under the soak's mixed load. Under load a connection comes back to the pool within milliseconds and
has just proved itself; one that sat idle across a database restart or a network cut fails the ping,
and the pool opens a fresh one (pessimistic disconnect handling, SQLAlchemy's pool events recipe).
A connection the server or the network already closed (a restart, a killed backend, a cut link)
is known to the driver without any round trip and is replaced at checkout whatever its idle time.

The PostgreSQL pool keeps up to ``POOL_SIZE`` (10) connections and opens at most ``POOL_OVERFLOW``
(10) more at a peak; it hands out the most recently returned one first (LIFO), so under load a few
warm connections do the work and the rest stay idle. SQLAlchemy's defaults (5 + 10, FIFO) closed an
overflow connection every time one came back above five: in the soak's set-up surge that was 3–4 new
connections a second per process, each a backend fork on the server and a codec set-up in gradbot.
Size PostgreSQL's ``max_connections`` for 20 per gradbot process (docs/deploy.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000
_WRITE = "gradbot_write"
SERVER_SETTINGS = ("search_path", "application_name")  # URL query parameters asyncpg takes as server settings
IDLE_PING_S = 1.0
POOL_SIZE = 10
POOL_OVERFLOW = 10
_USED = "gradbot_used_at"


class Database:
    def __init__(self, url: str | URL, *, echo: bool = False, idle_ping_s: float = IDLE_PING_S) -> None:
        parsed, connect_args = _prepare(make_url(url))
        self.url = parsed
        pool: dict[str, Any] = {} if _is_sqlite(parsed) else {
            "pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "pool_use_lifo": True}
        self.engine: AsyncEngine = create_async_engine(parsed, echo=echo, connect_args=connect_args, **pool)
        self._autocommit: AsyncEngine | None = None
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)
        else:
            _install_idle_ping(self.engine, idle_ping_s)
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

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
        """Reads. On PostgreSQL without BEGIN and COMMIT (autocommit): under its default READ COMMITTED
        every statement of a transaction takes its own snapshot anyway, so the two round trips bought
        nothing (0.2 ms CPU and 0.27 ms of waiting per read, a third of a one-SELECT read)."""
        if self._autocommit is None:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        else:
            async with self._autocommit.connect() as conn:
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
    settings = {k: v for k in SERVER_SETTINGS if isinstance(v := url.query.get(k), str) and v}
    if not settings:
        return url, {}
    return url.difference_update_query(list(settings)), {"server_settings": settings}


def _make_parent(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _install_idle_ping(engine: AsyncEngine, idle_ping_s: float) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Raising DisconnectionError makes the pool drop this connection and check out a fresh one.
        if dbapi_connection.driver_connection.is_closed():  # the server or the network closed it: no round trip
            raise exc.DisconnectionError()
        used = record.info.get(_USED)
        if used is None or time.monotonic() - used < idle_ping_s:
            return  # just opened, or in steady use
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise exc.DisconnectionError() from error


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so), unless it already is.

    Two processes opening a fresh file at once both hold a shared lock and both want the exclusive
    one to switch; SQLite refuses one of them at once ("database is locked") instead of letting
    busy_timeout wait, since waiting could deadlock. That one looks again shortly: by then the file is
    WAL and nothing needs switching (test_two_workers_starting_at_once_both_succeed failed 1 run in 7).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)  # start-up only, on a fresh file


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver's legacy implicit BEGIN skips DDL and SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching a fresh file to WAL needs a lock another worker may hold.
        # synchronous stays FULL (the default): a committed payment must survive a power cut.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
