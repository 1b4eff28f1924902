"""When a procedure is open: windows per school (``"*"``: every school) and cohort (``0``: every cohort),
each with the days before closing on which an automatic reminder goes out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit
from storage.sql.base import upsert, utcnow
from storage.sql.tables import procedure_windows as tw

ANY_SCHOOL = "*"
ANY_COHORT = 0
SEEDED_BY = "gradbot"  # the actor of a row copied from a procedure file at start-up, not set by staff


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    procedure: str
    school_code: str
    cohort: int
    opens: date
    closes: date
    remind_days: list[int]
    remind_template: str | None
    updated_by: str
    updated_at: datetime


def _window(row: Any) -> Window:
    return Window(**row._mapping)


async def put(conn: AsyncConnection, *, procedure: str, opens: date, closes: date, actor: str,
              school_code: str = ANY_SCHOOL, cohort: int = ANY_COHORT, remind_days: Sequence[int] = (),
              remind_template: str | None = None, at: datetime | None = None) -> Window:
    """Create or replace the window of (procedure, school, cohort); audited."""
    if closes < opens:
        raise ValueError("a window cannot close before it opens")
    at = at or utcnow()
    days = sorted({int(d) for d in remind_days if int(d) >= 0}, reverse=True)
    values = {"opens": opens, "closes": closes, "remind_days": days, "remind_template": remind_template,
              "updated_by": actor, "updated_at": at}
    stmt = upsert(conn, tw).values(procedure=procedure, school_code=school_code, cohort=cohort, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["procedure", "school_code", "cohort"], set_=values))
    window = await find_exact(conn, procedure, school_code, cohort)
    assert window is not None
    await audit.record(conn, actor=actor, action="window.put", openid=None, at=at,
                       details={"procedure": procedure, "school": school_code, "cohort": cohort,
                                "opens": opens.isoformat(), "closes": closes.isoformat(), "remind_days": days})
    return window


async def find_exact(conn: AsyncConnection, procedure: str, school_code: str, cohort: int) -> Window | None:
    stmt = sa.select(tw).where(tw.c.procedure == procedure, tw.c.school_code == school_code, tw.c.cohort == cohort)
    row = (await conn.execute(stmt)).first()
    return _window(row) if row else None


async def for_student(conn: AsyncConnection, procedure: str, school_code: str | None,
                      cohort: int | None) -> Window | None:
    """The most specific window that applies: school and cohort, then school, then cohort, then default."""
    return await _most_specific(conn, procedure, school_code, cohort)


async def set_by_staff(conn: AsyncConnection, procedure: str, school_code: str | None,
                       cohort: int | None) -> Window | None:
    """Like :func:`for_student`, among the windows staff set in the console: a row only seeded from the
    procedure file (``SEEDED_BY``) does not count, so the file's own dates apply until staff edit it."""
    return await _most_specific(conn, procedure, school_code, cohort, by_staff=True)


def _most_specific_stmt(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Built once: a procedure's start looks its window up on every start (building per call was a
    quarter of the lookup's CPU)."""
    return sa.select(tw).where(tw.c.procedure == sa.bindparam("procedure"),
                               tw.c.school_code.in_([sa.bindparam("school"), ANY_SCHOOL]),
                               tw.c.cohort.in_([sa.bindparam("cohort"), ANY_COHORT]), *where)


_MOST_SPECIFIC = {False: _most_specific_stmt(), True: _most_specific_stmt(tw.c.updated_by != SEEDED_BY)}


async def _most_specific(conn: AsyncConnection, procedure: str, school_code: str | None, cohort: int | None,
                         *, by_staff: bool = False) -> Window | None:
    params = {"procedure": procedure, "school": school_code or ANY_SCHOOL, "cohort": cohort or ANY_COHORT}
    found = [_window(r) for r in await conn.execute(_MOST_SPECIFIC[by_staff], params)]
    found.sort(key=lambda w: (w.school_code == ANY_SCHOOL, w.cohort == ANY_COHORT))
    return found[0] if found else None


async def get(conn: AsyncConnection, window_id: int) -> Window | None:
    row = (await conn.execute(sa.select(tw).where(tw.c.id == window_id))).first()
    return _window(row) if row else None


async def all_windows(conn: AsyncConnection) -> list[Window]:
    stmt = sa.select(tw).order_by(tw.c.procedure, tw.c.school_code, tw.c.cohort)
    return [_window(r) for r in await conn.execute(stmt)]
