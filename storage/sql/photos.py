"""Photos a student sent: the original and the fixed file (by content hash) and the check results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import utcnow
from storage.sql.tables import photos as tp


@dataclass(frozen=True, slots=True)
class Photo:
    id: int
    openid: str
    procedure: str
    original_sha256: str
    fixed_sha256: str | None
    profile: str
    ok: bool
    fixable: bool
    checks: Any
    status: str
    created_at: datetime
    files_deleted_at: datetime | None = None


async def add(conn: AsyncConnection, openid: str, *, procedure: str, original_sha256: str,
              fixed_sha256: str | None, profile: str, ok: bool, fixable: bool, checks: Mapping[str, Any],
              at: datetime | None = None) -> int:
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    result = await conn.execute(sa.insert(tp).values(
        openid=openid, procedure=procedure, original_sha256=original_sha256, fixed_sha256=fixed_sha256,
        profile=profile, ok=ok, fixable=fixable, checks=dict(checks), status="pending", created_at=at,
    ).returning(tp.c.id))
    return int(result.scalar_one())


async def get(conn: AsyncConnection, photo_id: int) -> Photo | None:
    row = (await conn.execute(sa.select(tp).where(tp.c.id == photo_id))).first()
    return Photo(**row._mapping) if row else None


async def set_status(conn: AsyncConnection, photo_id: int, openid: str, status: str) -> bool:
    """Only the student's own photo changes (a forged id from another student changes nothing)."""
    stmt = sa.update(tp).where(tp.c.id == photo_id, tp.c.openid == openid).values(status=status)
    return bool((await conn.execute(stmt)).rowcount)


async def latest_accepted(conn: AsyncConnection, openid: str, procedure: str) -> Photo | None:
    stmt = (sa.select(tp).where(tp.c.openid == openid, tp.c.procedure == procedure, tp.c.status == "accepted")
            .order_by(tp.c.created_at.desc(), tp.c.id.desc()).limit(1))
    row = (await conn.execute(stmt)).first()
    return Photo(**row._mapping) if row else None
