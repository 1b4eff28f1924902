"""Erasure and export of one student's records (PIPL art. 45 and 47; docs/privacy.md).

Both walk every table that has an ``openid`` column, so a table added later is exported and erased
without anyone remembering to list it here. Erasure keeps only what a legal duty needs:

* ``orders`` (and ``order_events`` through them): bookkeeping of money received;
* ``audit_log``: who changed what and when, with masked values only;
* ``broadcast_recipients``: that a notice was sent to this openid (no content, no name);
* the ``students`` row itself, marked ``erased_at`` (orders reference it).

Files (photos, documents: any ``*sha256`` column) are content-addressed and may be shared (the same
bytes sent twice); the caller gets back only the digests no remaining row refers to, and deletes
those from the file store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit
from storage.sql.base import utcnow
from storage.sql.tables import metadata, order_events, orders, students

KEPT_TABLES = frozenset({"students", "orders", "audit_log", "broadcast_recipients"})
# Ciphertexts and the keyed hash are key material's business; an export reveals values separately.
SECRET_COLUMNS = frozenset({"name_enc", "id_enc", "id_hmac"})


@dataclass(frozen=True, slots=True)
class Erasure:
    openid: str
    deleted: dict[str, int] = field(default_factory=dict)  # rows per table
    kept: dict[str, int] = field(default_factory=dict)
    unreferenced_files: tuple[str, ...] = ()  # digests the caller removes from the file store


def student_tables() -> list[sa.Table]:
    """Tables holding rows about one student, dependants first (safe order for deletes)."""
    return [t for t in reversed(metadata.sorted_tables) if "openid" in t.c]


async def erase(conn: AsyncConnection, openid: str, *, actor: str, at: datetime | None = None) -> Erasure | None:
    """Delete everything about ``openid`` but the kept tables; None when we hold no such student."""
    at = at or utcnow()
    if (await conn.execute(sa.select(students.c.openid).where(students.c.openid == openid))).first() is None:
        return None
    digests = await _file_digests(conn, openid)
    deleted: dict[str, int] = {}
    for table in student_tables():
        if table.name not in KEPT_TABLES:
            deleted[table.name] = (await conn.execute(sa.delete(table).where(table.c.openid == openid))).rowcount
    await conn.execute(sa.update(students).where(students.c.openid == openid).values(erased_at=at, updated_at=at))
    kept = await _kept_counts(conn, openid)
    await audit.record(conn, actor=actor, action="privacy.erase", openid=openid, at=at,
                       details={"deleted": {k: v for k, v in deleted.items() if v}, "kept": kept})
    unreferenced = tuple(sorted(digests - await referenced(conn, digests)))
    return Erasure(openid, deleted, kept, unreferenced)


PAID_STATES = ("paid", "refunded")  # orders an erasure keeps as bookkeeping of money received


@dataclass(frozen=True, slots=True)
class Held:
    """What we hold on a student, counted: rows per table an erasure deletes (dependants first, as
    :func:`student_tables` orders them) and the paid orders it keeps."""

    rows: dict[str, int]
    paid_orders: int


def _held_stmt() -> sa.Select[Any]:
    """One SELECT of counts (a scalar subquery per table), built once: the erasure's confirmation
    showed the list from an export, a SELECT of every row of every table (13 statements)."""
    openid = sa.bindparam("openid", type_=students.c.openid.type)

    def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        return sa.select(sa.func.count()).select_from(table).where(table.c.openid == openid, *where).scalar_subquery()

    erasable = [t for t in student_tables() if t.name not in KEPT_TABLES]
    paid = count(orders, sa.or_(*(orders.c.state == s for s in PAID_STATES)))
    return sa.select(count(students).label("students"), paid.label("paid_orders"),
                     *(count(t).label(t.name) for t in erasable))


_HELD = _held_stmt()


async def held(conn: AsyncConnection, openid: str) -> Held | None:
    """Counts of what :func:`erase` would delete and keep; None for a student we hold no row of."""
    row = dict((await conn.execute(_HELD, {"openid": openid})).one()._mapping)
    if not row.pop("students"):
        return None
    paid = int(row.pop("paid_orders"))
    return Held({name: int(n) for name, n in row.items()}, paid)


def file_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """Columns naming a file in the content-addressed store (``*sha256``: photos, documents)."""
    return [c for c in table.c if c.name.endswith("sha256")]


async def referenced(conn: AsyncConnection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` any row still needs (rows whose files retention removed do not count)."""
    wanted = list(digests)
    found: set[str] = set()
    for table in metadata.sorted_tables if wanted else ():
        live = table.c.files_deleted_at.is_(None) if "files_deleted_at" in table.c else sa.true()
        for column in file_columns(table):
            found |= set((await conn.execute(sa.select(column).where(live, column.in_(wanted)))).scalars())
    return found


async def _file_digests(conn: AsyncConnection, openid: str) -> set[str]:
    found: set[str] = set()
    for table in student_tables():
        for column in file_columns(table):
            rows = await conn.execute(sa.select(column).where(table.c.openid == openid, column.is_not(None)))
            found |= set(rows.scalars())
    return found


async def _kept_counts(conn: AsyncConnection, openid: str) -> dict[str, int]:
    counts = {}
    for table in student_tables():
        if table.name in KEPT_TABLES - {"students"}:
            stmt = sa.select(sa.func.count()).select_from(table).where(table.c.openid == openid)
            counts[table.name] = int((await conn.execute(stmt)).scalar_one())
    return counts


async def export(conn: AsyncConnection, openid: str) -> dict[str, list[dict[str, Any]]] | None:
    """Every row about ``openid``, table by table (ciphertexts left out); None for an unknown student."""
    held: dict[str, list[dict[str, Any]]] = {}
    for table in student_tables():
        columns = [c for c in table.c if c.name not in SECRET_COLUMNS]
        stmt = sa.select(*columns).where(table.c.openid == openid).order_by(*table.primary_key.columns)
        held[table.name] = [_plain(row._mapping) for row in await conn.execute(stmt)]
    if not held.get("students"):
        return None
    held["order_events"] = await _order_events(conn, openid)
    return held


async def _order_events(conn: AsyncConnection, openid: str) -> list[dict[str, Any]]:
    mine = sa.select(orders.c.out_trade_no).where(orders.c.openid == openid)
    stmt = sa.select(order_events).where(order_events.c.out_trade_no.in_(mine)).order_by(order_events.c.id)
    return [_plain(row._mapping) for row in await conn.execute(stmt)]


def _plain(row: Any) -> dict[str, Any]:
    """JSON-ready values: dates as ISO 8601 strings."""
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}
