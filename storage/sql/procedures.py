"""Progress of each paperwork procedure per student, as dialogs record it for the console and CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import utcnow
from storage.sql.tables import procedures as tp
from storage.sql.tables import students as ts


@dataclass(frozen=True, slots=True)
class Progress:
    name: str
    state: str
    next_step: str | None
    updated_at: datetime
    answers: Mapping[str, Any] = field(default_factory=dict)


def _upserts(dialect: str, with_answers: bool) -> sa.Executable:
    """The progress upsert of one dialect, built once (building and cache-keying it per call was most
    of a step's SQL CPU). On PostgreSQL the students row the foreign key needs is made in the same
    statement (a data-modifying CTE, as :func:`students.ensure` makes it); SQLite has no such CTE,
    so there :func:`set_state` runs ``students.ensure`` first."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = ["state", "next_step", "updated_at"] + (["answers"] if with_answers else [])
    values = {c: sa.bindparam(c, type_=tp.c[c].type) for c in ["openid", "name", *columns]}
    stmt = insert(tp).values(values)
    stmt = stmt.on_conflict_do_update(index_elements=["openid", "name"],
                                      set_={c: stmt.excluded[c] for c in columns})
    if dialect == "postgresql":
        at = sa.bindparam("updated_at", type_=ts.c.updated_at.type)
        ensured = (insert(ts).values(openid=sa.bindparam("openid", type_=ts.c.openid.type), following=True,
                                     created_at=at, updated_at=at)
                   .on_conflict_do_nothing(index_elements=["openid"]).cte("ensured"))
        stmt = stmt.add_cte(ensured)
    return stmt


_UPSERT = {(d, a): _upserts(d, a) for d in ("postgresql", "sqlite") for a in (False, True)}


async def set_state(
    conn: AsyncConnection, openid: str, name: str, state: str, *,
    next_step: str | None = None, at: datetime | None = None, answers: Mapping[str, Any] | None = None,
) -> None:
    """``answers`` (when given) replaces what the student entered so far; None leaves it as it was."""
    at = at or utcnow()
    dialect = conn.dialect.name
    if dialect != "postgresql":
        await students.ensure(conn, openid, at)
    params: dict[str, Any] = {"openid": openid, "name": name, "state": state, "next_step": next_step,
                              "updated_at": at}
    if answers is not None:
        params["answers"] = dict(answers)
    await conn.execute(_UPSERT[dialect, answers is not None], params)


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
