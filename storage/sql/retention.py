"""Retention of uploaded files: which rows' files may go, and the mark that they went.

A photo's files (original upload and fixed version) and a student's uploaded documents are due once
the student's procedure has been in a finished state for the retention period. The rows stay (check
results, titles, sizes); only ``files_deleted_at`` is set. PDFs gradbot generated are not uploads
and are kept. Which states count as finished is the dialog definitions' knowledge, so the caller
passes them in per procedure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.erase import file_columns
from storage.sql.tables import documents, metadata, photos
from storage.sql.tables import procedures as tpr

RETAINED = (photos, documents)  # tables of uploads: procedure, openid, *sha256 and files_deleted_at


@dataclass(frozen=True, slots=True)
class DueRow:
    id: int
    digests: frozenset[str]


async def due_rows(conn: AsyncConnection, table: sa.Table, finished: Mapping[str, Collection[str]],
                   before: datetime, limit: int = 500) -> list[DueRow]:
    """Rows of ``table`` with files whose procedure reached a finished state before ``before``."""
    done = [sa.and_(tpr.c.name == name, tpr.c.state.in_(list(states))) for name, states in finished.items() if states]
    if not done:
        return []
    joined = table.join(tpr, sa.and_(tpr.c.openid == table.c.openid, tpr.c.name == table.c.procedure))
    wanted = [table.c.files_deleted_at.is_(None), tpr.c.updated_at < before, sa.or_(*done)]
    if "source" in table.c:
        wanted.append(table.c.source != "generated")  # our own PDFs are not uploads
    columns = file_columns(table)
    stmt = sa.select(table.c.id, *columns).select_from(joined).where(*wanted).order_by(table.c.id).limit(limit)
    return [DueRow(row[0], frozenset(d for d in row[1:] if d)) for row in await conn.execute(stmt)]


async def mark_files_deleted(conn: AsyncConnection, table: sa.Table, ids: Iterable[int], at: datetime) -> int:
    wanted = list(ids)
    if not wanted:
        return 0
    stmt = (sa.update(table).where(table.c.id.in_(wanted), table.c.files_deleted_at.is_(None))
            .values(files_deleted_at=at))
    return int((await conn.execute(stmt)).rowcount)


async def known_digests(conn: AsyncConnection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` any row names at all (files deleted or not): the rest are orphans."""
    wanted = list(digests)
    found: set[str] = set()
    for table in metadata.sorted_tables:
        for column in file_columns(table):
            found |= set((await conn.execute(sa.select(column).where(column.in_(wanted)))).scalars())
    return found
