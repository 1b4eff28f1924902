"""School link: which school a student graduates from, in which education type, level and cohort."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import DialectInsert, PreparedUpsert, utcnow
from storage.sql.tables import school_links as tl
from storage.sql.tables import schools as ts


@dataclass(frozen=True, slots=True)
class SchoolLink:
    openid: str
    school_code: str | None
    school_name: str
    province: str | None
    city: str | None
    education_type: str
    level: str
    cohort: int
    updated_at: datetime


_LINK_VALUES = ("school_code", "school_name", "education_type", "level", "cohort", "updated_at")


def _replace_link(insert: DialectInsert) -> DialectInsert:
    params = {c: sa.bindparam(c, type_=tl.c[c].type) for c in ("openid", *_LINK_VALUES)}
    stmt = students.ensuring(insert, params["openid"], params["updated_at"]).values(params)
    return stmt.on_conflict_do_update(index_elements=["openid"], set_={c: stmt.excluded[c] for c in _LINK_VALUES})


_SET_LINK = PreparedUpsert(tl, _replace_link)


async def set_link(
    conn: AsyncConnection, openid: str, *, school_code: str | None, school_name: str,
    education_type: str, level: str, cohort: int, at: datetime | None = None,
) -> None:
    """``school_code`` may be None for a school missing from the catalogue (staff add it later).
    The caller audits the change (it knows the actor and what to say)."""
    at = at or utcnow()
    await students.ensure_unless_ensuring(conn, openid, at)
    await conn.execute(_SET_LINK.on(conn), {
        "openid": openid, "school_code": school_code, "school_name": school_name,
        "education_type": education_type, "level": level, "cohort": cohort, "updated_at": at})


# Built once: building and cache-keying a SELECT on every call was a third of a status lookup's CPU.
_GET = (
    sa.select(tl.c.openid, tl.c.school_code, tl.c.school_name, ts.c.province, ts.c.city,
              tl.c.education_type, tl.c.level, tl.c.cohort, tl.c.updated_at)
    .select_from(tl.outerjoin(ts, ts.c.code == tl.c.school_code))
    .where(tl.c.openid == sa.bindparam("openid"))
)


async def get(conn: AsyncConnection, openid: str) -> SchoolLink | None:
    row = (await conn.execute(_GET, {"openid": openid})).first()
    return SchoolLink(**row._mapping) if row else None


async def remove(conn: AsyncConnection, openid: str) -> bool:
    return bool((await conn.execute(sa.delete(tl).where(tl.c.openid == openid))).rowcount)
