"""Progress of each paperwork procedure per student, as dialogs record it for the console and CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    answers: Mapping[str, Any] = field(default_factory=dict)


async def set_state(
    conn: AsyncConnection, openid: str, name: str, state: str, *,
    next_step: str | None = None, at: datetime | None = None, answers: Mapping[str, Any] | None = None,
) -> None:
    """``answers`` (when given) replaces what the student entered so far; None leaves it as it was."""
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    values: dict[str, Any] = {"state": state, "next_step": next_step, "updated_at": at}
    if answers is not None:
        values["answers"] = dict(answers)
    stmt = upsert(conn, tp).values(openid=openid, name=name, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["openid", "name"], set_=values))


# Built once: building and cache-keying a SELECT on every call was a third of a status lookup's CPU.
_FOR_STUDENT = (
    sa.select(tp.c.name, tp.c.state, tp.c.next_step, tp.c.updated_at)
    .where(tp.c.openid == sa.bindparam("openid"))
    .order_by(tp.c.name)
)


async def for_student(conn: AsyncConnection, openid: str) -> list[Progress]:
    """Progress of every procedure, without the answers (status lines run on every message)."""
    return [_progress(row) for row in await conn.execute(_FOR_STUDENT, {"openid": openid})]


async def get(conn: AsyncConnection, openid: str, name: str) -> Progress | None:
    stmt = (sa.select(tp.c.name, tp.c.state, tp.c.next_step, tp.c.updated_at, tp.c.answers)
            .where(tp.c.openid == openid, tp.c.name == name))
    row = (await conn.execute(stmt)).first()
    return _progress(row) if row else None


def _progress(row: Any) -> Progress:
    values = dict(row._mapping)
    values["answers"] = values.get("answers") or {}
    return Progress(**values)
