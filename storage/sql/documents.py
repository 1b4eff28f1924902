"""Documents of a procedure: what a student uploaded (in the chat or by link) and the PDFs gradbot
generated for them. The bytes live in the content-addressed file store; a row says whose file it is,
which slot (dialog state) it fills and what it is. A new upload for a slot adds a row: the latest
row per slot is the current document, older ones stay for the review history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import utcnow
from storage.sql.tables import documents as td


@dataclass(frozen=True, slots=True)
class Document:
    id: int
    openid: str
    procedure: str
    slot: str
    title: str
    kind: str | None
    sha256: str
    content_type: str
    size_bytes: int
    source: str
    created_at: datetime
    files_deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewDocument:
    procedure: str
    slot: str
    title: str
    sha256: str
    content_type: str
    size_bytes: int
    source: str
    kind: str | None = None


def _document(row: Any) -> Document:
    return Document(**row._mapping)


async def add(conn: AsyncConnection, openid: str, new: NewDocument, at: datetime | None = None) -> int:
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    values = {"openid": openid, "procedure": new.procedure, "slot": new.slot, "title": new.title[:64],
              "kind": new.kind[:64] if new.kind else None, "sha256": new.sha256,
              "content_type": new.content_type, "size_bytes": new.size_bytes, "source": new.source,
              "created_at": at}
    return int((await conn.execute(sa.insert(td).values(**values).returning(td.c.id))).scalar_one())


async def get(conn: AsyncConnection, document_id: int, openid: str) -> Document | None:
    """Only the student's own document (a forged id from another student finds nothing)."""
    row = (await conn.execute(sa.select(td).where(td.c.id == document_id, td.c.openid == openid))).first()
    return _document(row) if row else None


async def many(conn: AsyncConnection, openid: str, ids: Sequence[int]) -> list[Document]:
    stmt = sa.select(td).where(td.c.openid == openid, td.c.id.in_(list(ids))).order_by(td.c.id)
    return [_document(r) for r in await conn.execute(stmt)]


async def latest(conn: AsyncConnection, openid: str, procedure: str, slot: str,
                 since: datetime | None = None) -> Document | None:
    stmt = sa.select(td).where(td.c.openid == openid, td.c.procedure == procedure, td.c.slot == slot)
    if since is not None:
        stmt = stmt.where(td.c.created_at >= since)
    row = (await conn.execute(stmt.order_by(td.c.id.desc()).limit(1))).first()
    return _document(row) if row else None


async def for_procedure(conn: AsyncConnection, openid: str, procedure: str) -> list[Document]:
    """Every document of one procedure, oldest first (the console's history view)."""
    stmt = sa.select(td).where(td.c.openid == openid, td.c.procedure == procedure).order_by(td.c.id)
    return [_document(r) for r in await conn.execute(stmt)]
