"""Progress of each paperwork procedure per student, as dialogs record it for the console and CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import DialectInsert, PreparedUpsert, utcnow
from storage.sql.tables import procedures as tp


@dataclass(frozen=True, slots=True)
class Progress:
    name: str
    state: str
    next_step: str | None
    updated_at: datetime
    answers: Mapping[str, Any] = field(default_factory=dict)


def _upsert(with_answers: bool) -> PreparedUpsert[Any]:
    """The progress upsert, built once per dialect (building and cache-keying it per call was most of
    a step's SQL CPU); on PostgreSQL it also makes the students row the foreign key needs."""
    columns = ["state", "next_step", "updated_at"] + (["answers"] if with_answers else [])

    def finish(insert: DialectInsert) -> Any:
        values = {c: sa.bindparam(c, type_=tp.c[c].type) for c in ["openid", "name", *columns]}
        stmt = insert.values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["openid", "name"],
                                          set_={c: stmt.excluded[c] for c in columns})
        return students.ensuring(stmt, values["openid"], values["updated_at"])

    return PreparedUpsert(tp, finish)


_UPSERT = {answers: _upsert(answers) for answers in (False, True)}


async def set_state(
    conn: AsyncConnection, openid: str, name: str, state: str, *,
    next_step: str | None = None, at: datetime | None = None, answers: Mapping[str, Any] | None = None,
) -> None:
    """``answers`` (when given) replaces what the student entered so far; None leaves it as it was."""
    at = at or utcnow()
    await students.ensure_unless_ensuring(conn, openid, at)
    params: dict[str, Any] = {"openid": openid, "name": name, "state": state, "next_step": next_step,
                              "updated_at": at}
    if answers is not None:
        params["answers"] = dict(answers)
    await conn.execute(_UPSERT[answers is not None].on(conn), params)


# Built once: building and cache-keying a SELECT on every call was a third of a status lookup's CPU.
_FOR_STUDENT = (
    sa.select(tp.c.name, tp.c.state, tp.c.next_step, tp.c.updated_at)
    .where(tp.c.openid == sa.bindparam("openid"))
    .order_by(tp.c.name)
)


async def for_student(conn: AsyncConnection, openid: str) -> list[Progress]:
    """Progress of every procedure, without the answers (status lines run on every message)."""
    return [_progress(row) for row in await conn.execute(_FOR_STUDENT, {"openid": openid})]


_GET = (sa.select(tp.c.name, tp.c.state, tp.c.next_step, tp.c.updated_at, tp.c.answers)
        .where(tp.c.openid == sa.bindparam("openid"), tp.c.name == sa.bindparam("name")))


async def get(conn: AsyncConnection, openid: str, name: str) -> Progress | None:
    row = (await conn.execute(_GET, {"openid": openid, "name": name})).first()
    return _progress(row) if row else None


def _progress(row: Any) -> Progress:
    values = dict(row._mapping)
    values["answers"] = values.get("answers") or {}
    return Progress(**values)
