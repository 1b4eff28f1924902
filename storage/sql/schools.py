"""The school catalogue (MoE list): code, name, place, authority, level and known aliases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.base import upsert, utcnow
from storage.sql.tables import schools as ts

_CHUNK = 500
_UPDATED = ("name", "province", "city", "authority", "level", "aliases", "updated_at")


@dataclass(frozen=True, slots=True)
class School:
    code: str
    name: str
    province: str
    city: str
    authority: str
    level: str
    aliases: tuple[str, ...] = field(default=())


def _school(row: sa.Row[Any]) -> School:
    m = row._mapping
    return School(m["code"], m["name"], m["province"], m["city"], m["authority"], m["level"],
                  tuple(m["aliases"] or ()))


def _values(school: School, at: datetime) -> dict[str, Any]:
    return {"code": school.code, "name": school.name, "province": school.province, "city": school.city,
            "authority": school.authority, "level": school.level, "aliases": list(school.aliases),
            "updated_at": at}


async def upsert_many(conn: AsyncConnection, items: Iterable[School], at: datetime | None = None) -> int:
    """Insert or refresh schools by code; returns how many rows were written."""
    at = at or utcnow()
    rows = [_values(s, at) for s in items]
    for start in range(0, len(rows), _CHUNK):
        await _write_chunk(conn, rows[start:start + _CHUNK])
    return len(rows)


async def _write_chunk(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    stmt = upsert(conn, ts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"], set_={c: stmt.excluded[c] for c in _UPDATED}
    )
    await conn.execute(stmt, list(rows))


async def get(conn: AsyncConnection, code: str) -> School | None:
    row = (await conn.execute(sa.select(ts).where(ts.c.code == code))).first()
    return _school(row) if row else None


async def by_place(conn: AsyncConnection, province: str, city: str | None = None) -> list[School]:
    stmt = sa.select(ts).where(ts.c.province == province)
    if city is not None:
        stmt = stmt.where(ts.c.city == city)
    return [_school(r) for r in await conn.execute(stmt.order_by(ts.c.code))]


async def all_schools(conn: AsyncConnection) -> list[School]:
    return [_school(r) for r in await conn.execute(sa.select(ts).order_by(ts.c.code))]


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(ts))).scalar_one())
