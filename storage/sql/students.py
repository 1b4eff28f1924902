"""Students: one row per openid with its follow state. Other records hang off this row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.base import DialectInsert, PreparedUpsert, upsert, utcnow
from storage.sql.tables import students


@dataclass(frozen=True, slots=True)
class Student:
    openid: str
    following: bool
    followed_at: datetime | None
    unfollowed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = None


_ENSURE = PreparedUpsert(students, lambda insert: insert.on_conflict_do_nothing(index_elements=["openid"]))


async def ensure(conn: AsyncConnection, openid: str, at: datetime | None = None) -> None:
    """Make sure the row exists (a student who followed before gradbot existed has none yet)."""
    at = at or utcnow()
    await conn.execute(_ENSURE.on(conn), {"openid": openid, "following": True, "created_at": at, "updated_at": at})


def ensuring(insert: DialectInsert, openid: sa.BindParameter[str], at: sa.BindParameter[datetime]) -> DialectInsert:
    """``insert`` (of a row whose foreign key needs the students row) that also makes that row, as
    :func:`ensure` would, on PostgreSQL: a data-modifying CTE, whose row the foreign key check at the
    end of the statement sees. SQLite has no such CTE; :func:`ensure_unless_ensuring` runs first there.
    One statement instead of two in every first write of a student's records."""
    if not isinstance(insert, postgresql.Insert):
        return insert
    made = (postgresql.insert(students).values(openid=openid, following=True, created_at=at, updated_at=at)
            .on_conflict_do_nothing(index_elements=["openid"]).cte("ensured"))
    return insert.add_cte(made)


async def ensure_unless_ensuring(conn: AsyncConnection, openid: str, at: datetime) -> None:
    """:func:`ensure`, where the statement built with :func:`ensuring` cannot make the row (SQLite)."""
    if conn.dialect.name != "postgresql":
        await ensure(conn, openid, at)


async def follow(conn: AsyncConnection, openid: str, at: datetime | None = None) -> None:
    await _set_following(conn, openid, True, at or utcnow())


async def unfollow(conn: AsyncConnection, openid: str, at: datetime | None = None) -> None:
    await _set_following(conn, openid, False, at or utcnow())


async def _set_following(conn: AsyncConnection, openid: str, following: bool, at: datetime) -> None:
    stamp = {"followed_at": at} if following else {"unfollowed_at": at}
    stmt = upsert(conn, students).values(
        openid=openid, following=following, created_at=at, updated_at=at, **stamp
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["openid"], set_={"following": following, "updated_at": at, **stamp}
    )
    await conn.execute(stmt)


async def get(conn: AsyncConnection, openid: str) -> Student | None:
    row = (await conn.execute(sa.select(students).where(students.c.openid == openid))).first()
    return Student(**row._mapping) if row else None
