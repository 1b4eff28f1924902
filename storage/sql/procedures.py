"""Progress of each paperwork procedure per student, as dialogs record it for the console and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import upsert, utcnow
from storage.sql.tables import procedures as tp


@dataclass(frozen=True, slots=True)
class Progress:
    name: str
    state: str
    next_step: str | None
    updated_at: datetime


async def set_state(
    conn: AsyncConnection, openid: str, name: str, state: str, *,
    next_step: str | None = None, at: datetime | None = None,
) -> None:
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    values = {"state": state, "next_step": next_step, "updated_at": at}
    stmt = upsert(conn, tp).values(openid=openid, name=name, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["openid", "name"], set_=values))


async def for_student(conn: AsyncConnection, openid: str) -> list[Progress]:
    stmt = (
        sa.select(tp.c.name, tp.c.state, tp.c.next_step, tp.c.updated_at)
        .where(tp.c.openid == openid)
        .order_by(tp.c.name)
    )
    return [Progress(**row._mapping) for row in await conn.execute(stmt)]
