"""Students: one row per openid with its follow state. Other records hang off this row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.base import PreparedUpsert, upsert, utcnow
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
