"""Staff accounts of the console: username, password hash (argon2, computed by the caller), role, schools."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit
from storage.sql.base import utcnow
from storage.sql.errors import RecordError
from storage.sql.tables import STAFF_ROLES
from storage.sql.tables import staff_users as ts


class StaffExists(RecordError):
    code = "staff_exists"


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    username: str
    password_hash: str
    role: str
    schools: list[str]
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope(self) -> list[str] | None:
        """School codes this account may see; None means every school."""
        return None if self.is_admin else list(self.schools)


def _user(row: Any) -> StaffUser:
    return StaffUser(**row._mapping)


async def add(conn: AsyncConnection, *, username: str, password_hash: str, role: str, schools: Sequence[str],
              actor: str, at: datetime | None = None) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValueError(f"role must be one of {', '.join(STAFF_ROLES)}")
    at = at or utcnow()
    values = {"username": username, "password_hash": password_hash, "role": role, "schools": list(schools),
              "active": True, "created_at": at}
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(ts).values(**values))
    except IntegrityError:
        raise StaffExists(f"a staff account named {username!r} exists") from None
    await audit.record(conn, actor=actor, action="staff.add", openid=None, at=at,
                       details={"username": username, "role": role, "schools": list(schools)})
    user = await get(conn, username)
    assert user is not None
    return user


async def get(conn: AsyncConnection, username: str) -> StaffUser | None:
    row = (await conn.execute(sa.select(ts).where(ts.c.username == username))).first()
    return _user(row) if row else None


async def all_users(conn: AsyncConnection) -> list[StaffUser]:
    return [_user(r) for r in await conn.execute(sa.select(ts).order_by(ts.c.username))]


async def set_password(conn: AsyncConnection, username: str, password_hash: str, *, actor: str) -> bool:
    done = (await conn.execute(sa.update(ts).where(ts.c.username == username)
                               .values(password_hash=password_hash))).rowcount
    if done:
        await audit.record(conn, actor=actor, action="staff.password", openid=None, details={"username": username})
    return bool(done)


async def set_active(conn: AsyncConnection, username: str, active: bool, *, actor: str) -> bool:
    done = (await conn.execute(sa.update(ts).where(ts.c.username == username).values(active=active))).rowcount
    if done:
        await audit.record(conn, actor=actor, action="staff.enable" if active else "staff.disable", openid=None,
                           details={"username": username})
    return bool(done)


async def logged_in(conn: AsyncConnection, username: str, at: datetime | None = None) -> None:
    await conn.execute(sa.update(ts).where(ts.c.username == username).values(last_login_at=at or utcnow()))
