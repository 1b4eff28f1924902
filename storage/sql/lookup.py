"""Finding students for staff: by openid, by masked ID number, by masked name. Masked values only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.tables import identity_bindings as tb
from storage.sql.tables import orders as to
from storage.sql.tables import school_links as tl


@dataclass(frozen=True, slots=True)
class Found:
    openid: str
    name_masked: str
    id_masked: str
    school_code: str | None
    school_name: str | None
    cohort: int | None


@dataclass(frozen=True, slots=True)
class OrderLine:
    out_trade_no: str
    item: str
    amount_fen: int
    state: str
    created_at: datetime
    paid_at: datetime | None


def _base() -> sa.Select[Any]:
    return (sa.select(tb.c.openid, tb.c.name_masked, tb.c.id_masked, tl.c.school_code, tl.c.school_name,
                      tl.c.cohort)
            .select_from(tb.outerjoin(tl, tl.c.openid == tb.c.openid)).order_by(tb.c.openid))


async def _run(conn: AsyncConnection, stmt: sa.Select[Any], limit: int) -> list[Found]:
    return [Found(**row._mapping) for row in await conn.execute(stmt.limit(limit))]


async def by_openids(conn: AsyncConnection, openids: Sequence[str], limit: int = 50) -> list[Found]:
    return await _run(conn, _base().where(tb.c.openid.in_(list(openids))), limit)


async def by_masked_id(conn: AsyncConnection, head: str, tail: str, limit: int = 50) -> list[Found]:
    """``head`` (0–4 leading characters) and ``tail`` (last 4) of an ID number as masks show them."""
    pattern = f"{head}%{tail}".replace("_", r"\_")
    return await _run(conn, _base().where(tb.c.id_masked.like(pattern, escape="\\")), limit)


async def by_name_mask(conn: AsyncConnection, name_masked: str, limit: int = 500) -> list[Found]:
    return await _run(conn, _base().where(tb.c.name_masked == name_masked), limit)


async def order_history(conn: AsyncConnection, openid: str) -> list[OrderLine]:
    stmt = (sa.select(to.c.out_trade_no, to.c.item, to.c.amount_fen, to.c.state, to.c.created_at, to.c.paid_at)
            .where(to.c.openid == openid).order_by(to.c.id.desc()))
    return [OrderLine(**row._mapping) for row in await conn.execute(stmt)]
