"""Retention of photo files: which photos' files may go, and the mark that they went.

A photo's files (original upload and fixed version) are due once the student's procedure has been in
a finished state for the retention period. The row stays, with its check results; only
``files_deleted_at`` is set. Which states count as finished is the dialog definitions' knowledge, so
the caller passes them in per procedure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.tables import photos as tph
from storage.sql.tables import procedures as tpr


@dataclass(frozen=True, slots=True)
class DuePhoto:
    id: int
    original_sha256: str
    fixed_sha256: str | None

    @property
    def digests(self) -> set[str]:
        return {d for d in (self.original_sha256, self.fixed_sha256) if d}


async def due_photos(conn: AsyncConnection, finished: Mapping[str, Collection[str]], before: datetime,
                     limit: int = 500) -> list[DuePhoto]:
    """Photos with files whose procedure reached a finished state before ``before``."""
    done = [sa.and_(tpr.c.name == name, tpr.c.state.in_(list(states))) for name, states in finished.items() if states]
    if not done:
        return []
    joined = tph.join(tpr, sa.and_(tpr.c.openid == tph.c.openid, tpr.c.name == tph.c.procedure))
    stmt = (sa.select(tph.c.id, tph.c.original_sha256, tph.c.fixed_sha256).select_from(joined)
            .where(tph.c.files_deleted_at.is_(None), tpr.c.updated_at < before, sa.or_(*done))
            .order_by(tph.c.id).limit(limit))
    return [DuePhoto(**row._mapping) for row in await conn.execute(stmt)]


async def mark_files_deleted(conn: AsyncConnection, ids: Iterable[int], at: datetime) -> int:
    wanted = list(ids)
    if not wanted:
        return 0
    stmt = sa.update(tph).where(tph.c.id.in_(wanted), tph.c.files_deleted_at.is_(None)).values(files_deleted_at=at)
    return int((await conn.execute(stmt)).rowcount)


async def known_digests(conn: AsyncConnection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` any photo row names at all (purged or not): the rest are orphans."""
    wanted = list(digests)
    found: set[str] = set()
    for column in (tph.c.original_sha256, tph.c.fixed_sha256):
        found |= set((await conn.execute(sa.select(column).where(column.in_(wanted)))).scalars())
    return found
