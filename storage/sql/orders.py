"""Payment orders and their event trail. ``out_trade_no`` is the idempotency key towards WeChat Pay.

State changes are compare-and-set (``UPDATE … WHERE state = expected``), so a duplicated payment
notification or two workers racing apply a change once; the loser learns the actual state. The
database allows one open (``created``) order per student and item (a partial unique index).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import utcnow
from storage.sql.errors import OpenOrderExists, OrderNotFound, StaleOrderState
from storage.sql.tables import order_events as te
from storage.sql.tables import orders as to

# A notification of money received wins even over our local close: the payment is a fact.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "created": frozenset({"paid", "closed"}),
    "closed": frozenset({"paid"}),
    "paid": frozenset({"refunded"}),
    "refunded": frozenset(),
}
_STAMPS = {"paid": "paid_at", "closed": "closed_at"}
_SETTABLE = frozenset({"prepay_id", "prepay_expires_at", "code_url", "transaction_id", "payer_openid"})


@dataclass(frozen=True, slots=True)
class NewOrder:
    out_trade_no: str
    openid: str
    procedure: str
    item: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    out_trade_no: str
    openid: str
    procedure: str
    item: str
    amount_fen: int
    state: str
    prepay_id: str | None
    prepay_expires_at: datetime | None
    code_url: str | None
    transaction_id: str | None
    payer_openid: str | None
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderEvent:
    at: datetime
    from_state: str | None
    to_state: str
    source: str
    details: dict[str, Any]


async def create(conn: AsyncConnection, new: NewOrder, *, source: str, at: datetime | None = None) -> Order:
    at = at or utcnow()
    await students.ensure(conn, new.openid, at)
    values = _fields(new)
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(to).values(**values, state="created", created_at=at))
    except IntegrityError:
        existing = await find_open(conn, new.openid, new.item)
        if existing is None:
            raise
        raise OpenOrderExists(existing.out_trade_no) from None
    await _event(conn, new.out_trade_no, None, "created", source, {"amount_fen": new.amount_fen}, at)
    return await _must_get(conn, new.out_trade_no)


def _fields(new: NewOrder) -> dict[str, Any]:
    return {name: getattr(new, name) for name in NewOrder.__dataclass_fields__}


async def get(conn: AsyncConnection, out_trade_no: str) -> Order | None:
    row = (await conn.execute(sa.select(to).where(to.c.out_trade_no == out_trade_no))).first()
    return Order(**row._mapping) if row else None


async def find_open(conn: AsyncConnection, openid: str, item: str) -> Order | None:
    stmt = sa.select(to).where(to.c.openid == openid, to.c.item == item, to.c.state == "created")
    row = (await conn.execute(stmt)).first()
    return Order(**row._mapping) if row else None


async def update_open(conn: AsyncConnection, out_trade_no: str, **fields: Any) -> Order:
    """Record prepay details (prepay_id, expiry, code_url) on an order that is still open."""
    await _cas(conn, out_trade_no, "created", _checked(fields))
    return await _must_get(conn, out_trade_no)


async def transition(
    conn: AsyncConnection, out_trade_no: str, *, expected: str, to_state: str, source: str,
    details: Mapping[str, Any] | None = None, at: datetime | None = None, **fields: Any,
) -> Order:
    if to_state not in TRANSITIONS.get(expected, frozenset()):
        raise ValueError(f"no transition {expected} -> {to_state}")
    at = at or utcnow()
    values = {**_checked(fields), "state": to_state}
    if to_state in _STAMPS:
        values[_STAMPS[to_state]] = at
    await _cas(conn, out_trade_no, expected, values)
    await _event(conn, out_trade_no, expected, to_state, source, dict(details or {}), at)
    return await _must_get(conn, out_trade_no)


async def events(conn: AsyncConnection, out_trade_no: str) -> list[OrderEvent]:
    stmt = (
        sa.select(te.c.at, te.c.from_state, te.c.to_state, te.c.source, te.c.details)
        .where(te.c.out_trade_no == out_trade_no).order_by(te.c.id)
    )
    return [OrderEvent(**row._mapping) for row in await conn.execute(stmt)]


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - _SETTABLE
    if unknown:
        raise ValueError(f"not settable on an order: {sorted(unknown)}")
    return dict(fields)


async def _cas(conn: AsyncConnection, out_trade_no: str, expected: str, values: Mapping[str, Any]) -> None:
    stmt = sa.update(to).where(to.c.out_trade_no == out_trade_no, to.c.state == expected).values(**values)
    if (await conn.execute(stmt)).rowcount == 1:
        return
    current = await get(conn, out_trade_no)
    if current is None:
        raise OrderNotFound(f"no order {out_trade_no}")
    raise StaleOrderState(out_trade_no, current.state)


async def _must_get(conn: AsyncConnection, out_trade_no: str) -> Order:
    order = await get(conn, out_trade_no)
    if order is None:
        raise OrderNotFound(f"no order {out_trade_no}")
    return order


async def _event(
    conn: AsyncConnection, out_trade_no: str, before: str | None, after: str, source: str,
    details: dict[str, Any], at: datetime,
) -> None:
    await conn.execute(sa.insert(te).values(
        out_trade_no=out_trade_no, at=at, from_state=before, to_state=after, source=source, details=details,
    ))


async def latest(conn: AsyncConnection, openid: str, item: str) -> Order | None:
    """The student's most recent order for ``item`` in any state (paid ones included)."""
    stmt = sa.select(to).where(to.c.openid == openid, to.c.item == item).order_by(to.c.id.desc()).limit(1)
    row = (await conn.execute(stmt)).first()
    return Order(**row._mapping) if row else None


async def open_before(conn: AsyncConnection, created_before: datetime, limit: int = 100) -> list[Order]:
    """Unpaid orders older than ``created_before``, oldest first (what reconciliation asks WeChat about)."""
    stmt = (sa.select(to).where(to.c.state == "created", to.c.created_at < created_before)
            .order_by(to.c.id).limit(limit))
    return [Order(**row._mapping) for row in await conn.execute(stmt)]
