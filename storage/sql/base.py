"""Small helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

DialectInsert = postgresql.Insert | sqlite.Insert
T = TypeVar("T")
_INSERTS: dict[str, Callable[[sa.Table], DialectInsert]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def utcnow() -> datetime:
    return datetime.now(UTC)


def upsert(conn: AsyncConnection, table: sa.Table) -> DialectInsert:
    """An INSERT that understands ON CONFLICT, in the dialect of this connection (both spell it alike)."""
    make = _INSERTS.get(conn.dialect.name)
    if make is None:
        raise _unsupported(conn)
    return make(table)


class PreparedUpsert(Generic[T]):
    """An INSERT … ON CONFLICT built once per dialect at import, run with a parameter dict.

    Building and cache-keying the statement on every call cost more Python CPU than running it (an
    ``ensure`` was 0.32 ms where a statement built once costs about 0.2). ``finish`` adds the ON
    CONFLICT clause (and RETURNING) to the dialect's bare INSERT; values come as parameters.
    """

    def __init__(self, table: sa.Table, finish: Callable[[DialectInsert], T]) -> None:
        self._built = {name: finish(make(table)) for name, make in _INSERTS.items()}

    def on(self, conn: AsyncConnection) -> T:
        try:
            return self._built[conn.dialect.name]
        except KeyError:
            raise _unsupported(conn) from None


def _unsupported(conn: AsyncConnection) -> NotImplementedError:
    return NotImplementedError(f"no upsert for dialect {conn.dialect.name}")
