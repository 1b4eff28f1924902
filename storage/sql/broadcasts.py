"""Broadcasts (deadline reminders) and one row per recipient: the durable record of who got what.

A broadcast is ``scheduled`` until its time; the first sender to start it flips it to ``sending``
and writes one ``pending`` row per recipient in the same transaction (all or nothing). Senders then
*claim* batches: PostgreSQL takes them with ``FOR UPDATE SKIP LOCKED``, SQLite serialises writers
(``BEGIN IMMEDIATE``), and on both a lease (``claimed_by``/``claimed_until``) keeps a batch with its
sender after the claim commits. A sender that dies leaves its lease to expire; the rows are then
claimed again and re-sent with the same ``client_msg_id``, which WeChat deduplicates (10 minutes,
far longer than the lease). A row without ``claimed_by`` but with ``claimed_until`` is a retry
waiting for its time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit
from storage.sql.base import utcnow
from storage.sql.tables import broadcast_recipients as trc
from storage.sql.tables import broadcasts as tbc

INSERT_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    title: str
    template: str
    variables: dict[str, Any]
    audience: dict[str, Any]
    state: str
    reason: str | None
    send_at: datetime
    rate: int
    total: int | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    window_id: int | None
    days_before: int | None


@dataclass(frozen=True, slots=True)
class Recipient:
    id: int
    openid: str
    client_msg_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Progress:
    id: int
    state: str
    total: int
    sent: int
    failed: int
    pending: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "total": self.total, "sent": self.sent, "failed": self.failed,
                "pending": self.pending, "state": self.state}


def _broadcast(row: Any) -> Broadcast:
    return Broadcast(**row._mapping)


async def create(conn: AsyncConnection, *, title: str, template: str, variables: Mapping[str, Any],
                 audience: Mapping[str, Any], send_at: datetime, rate: int, created_by: str,
                 window_id: int | None = None, days_before: int | None = None,
                 at: datetime | None = None) -> Broadcast:
    at = at or utcnow()
    values = {"title": title, "template": template, "variables": dict(variables), "audience": dict(audience),
              "state": "scheduled", "send_at": send_at, "rate": rate, "created_by": created_by, "created_at": at,
              "window_id": window_id, "days_before": days_before}
    broadcast_id = int((await conn.execute(sa.insert(tbc).values(**values).returning(tbc.c.id))).scalar_one())
    await audit.record(conn, actor=created_by, action="broadcast.create", openid=None, at=at,
                       details={"broadcast_id": broadcast_id, "template": template, "audience": dict(audience),
                                "send_at": send_at.isoformat(), "rate": rate})
    found = await get(conn, broadcast_id)
    assert found is not None
    return found


async def get(conn: AsyncConnection, broadcast_id: int) -> Broadcast | None:
    row = (await conn.execute(sa.select(tbc).where(tbc.c.id == broadcast_id))).first()
    return _broadcast(row) if row else None


async def for_window(conn: AsyncConnection, window_id: int) -> list[Broadcast]:
    stmt = sa.select(tbc).where(tbc.c.window_id == window_id).order_by(tbc.c.days_before.desc())
    return [_broadcast(r) for r in await conn.execute(stmt)]


async def due(conn: AsyncConnection, now: datetime, quota_reason: str) -> list[int]:
    """Broadcasts that need senders: sending, scheduled and due, or paused only by the quota."""
    stmt = sa.select(tbc.c.id).where(sa.or_(
        tbc.c.state == "sending",
        sa.and_(tbc.c.state == "scheduled", tbc.c.send_at <= now),
        sa.and_(tbc.c.state == "paused", tbc.c.reason == quota_reason),
    )).order_by(tbc.c.id)
    return [int(i) for i in (await conn.execute(stmt)).scalars()]


async def recent(conn: AsyncConnection, limit: int = 50) -> list[Broadcast]:
    stmt = sa.select(tbc).order_by(tbc.c.id.desc()).limit(limit)
    return [_broadcast(r) for r in await conn.execute(stmt)]


async def reschedule(conn: AsyncConnection, broadcast_id: int, send_at: datetime, **changes: Any) -> bool:
    """Move a broadcast that has not started yet."""
    stmt = (sa.update(tbc).where(tbc.c.id == broadcast_id, tbc.c.state == "scheduled")
            .values(send_at=send_at, **changes))
    return bool((await conn.execute(stmt)).rowcount)


async def set_state(conn: AsyncConnection, broadcast_id: int, state: str, *, expected: Sequence[str],
                    reason: str | None = None, at: datetime | None = None) -> bool:
    """Compare-and-set of the state; ``finished_at`` is stamped on done and cancelled."""
    values: dict[str, Any] = {"state": state, "reason": reason}
    if state in ("done", "cancelled"):
        values["finished_at"] = at or utcnow()
    stmt = sa.update(tbc).where(tbc.c.id == broadcast_id, tbc.c.state.in_(list(expected))).values(**values)
    return bool((await conn.execute(stmt)).rowcount)


async def begin_sending(conn: AsyncConnection, broadcast_id: int, now: datetime) -> bool:
    """Flip a due scheduled broadcast to sending; only one caller wins (its transaction adds recipients)."""
    stmt = (sa.update(tbc).where(tbc.c.id == broadcast_id, tbc.c.state == "scheduled", tbc.c.send_at <= now)
            .values(state="sending", started_at=now))
    return bool((await conn.execute(stmt)).rowcount)


async def add_recipients(conn: AsyncConnection, broadcast_id: int, rows: Iterable[tuple[str, str]]) -> int:
    """Insert (openid, client_msg_id) rows as pending; sets ``total``. Call inside ``begin_sending``'s transaction."""
    total = 0
    chunk: list[dict[str, Any]] = []
    for openid, client_msg_id in rows:
        chunk.append({"broadcast_id": broadcast_id, "openid": openid, "state": "pending",
                      "client_msg_id": client_msg_id, "attempts": 0})
        if len(chunk) >= INSERT_CHUNK:
            total += await _insert(conn, chunk)
            chunk = []
    total += await _insert(conn, chunk)
    await conn.execute(sa.update(tbc).where(tbc.c.id == broadcast_id).values(total=total))
    return total


async def _insert(conn: AsyncConnection, chunk: list[dict[str, Any]]) -> int:
    if chunk:
        await conn.execute(sa.insert(trc), chunk)
    return len(chunk)


async def claim(conn: AsyncConnection, broadcast_id: int, *, worker: str, limit: int, now: datetime,
                lease: timedelta) -> list[Recipient]:
    """Lease up to ``limit`` pending rows (lowest ids first) to ``worker``."""
    free = sa.or_(trc.c.claimed_until.is_(None), trc.c.claimed_until < now)
    pick = (sa.select(trc.c.id).where(trc.c.broadcast_id == broadcast_id, trc.c.state == "pending", free)
            .order_by(trc.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (sa.update(trc).where(trc.c.id.in_(pick.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(trc.c.id, trc.c.openid, trc.c.client_msg_id, trc.c.attempts))
    rows = [Recipient(**r._mapping) for r in await conn.execute(stmt)]
    rows.sort(key=lambda r: r.id)
    return rows


async def renew(conn: AsyncConnection, ids: Sequence[int], *, worker: str, until: datetime) -> int:
    """Extend ``worker``'s lease on rows it still holds (a batch taking longer than expected)."""
    if not ids:
        return 0
    stmt = (sa.update(trc).where(trc.c.id.in_(list(ids)), trc.c.claimed_by == worker, trc.c.state == "pending")
            .values(claimed_until=until))
    return int((await conn.execute(stmt)).rowcount)


async def mark_sent(conn: AsyncConnection, sent: Sequence[tuple[int, int]], at: datetime) -> None:
    """(row id, msgid) pairs WeChat accepted."""
    if sent:
        stmt = (sa.update(trc).where(trc.c.id == sa.bindparam("rid"))
                .values(state="sent", msgid=sa.bindparam("mid"), sent_at=at, claimed_by=None, claimed_until=None,
                        attempts=trc.c.attempts + 1, errcode=None))
        await conn.execute(stmt, [{"rid": rid, "mid": msgid} for rid, msgid in sent])


async def mark_failed(conn: AsyncConnection, failed: Sequence[tuple[int, int]], at: datetime) -> None:
    """(row id, errcode) pairs that will not be tried again."""
    if failed:
        stmt = (sa.update(trc).where(trc.c.id == sa.bindparam("rid"))
                .values(state="failed", errcode=sa.bindparam("code"), sent_at=at, claimed_by=None,
                        claimed_until=None, attempts=trc.c.attempts + 1))
        await conn.execute(stmt, [{"rid": rid, "code": code} for rid, code in failed])


async def retry_later(conn: AsyncConnection, ids: Sequence[int], until: datetime, errcode: int | None) -> None:
    """Give rows back with an earliest time for the next try (transient failures)."""
    if ids:
        stmt = (sa.update(trc).where(trc.c.id.in_(list(ids)))
                .values(claimed_by=None, claimed_until=until, attempts=trc.c.attempts + 1, errcode=errcode))
        await conn.execute(stmt)


async def release(conn: AsyncConnection, ids: Sequence[int]) -> None:
    """Give rows back untried (the queue paused)."""
    if ids:
        await conn.execute(sa.update(trc).where(trc.c.id.in_(list(ids))).values(claimed_by=None, claimed_until=None))


async def progress(conn: AsyncConnection, broadcast_id: int) -> Progress | None:
    broadcast = await get(conn, broadcast_id)
    if broadcast is None:
        return None
    stmt = (sa.select(trc.c.state, sa.func.count()).where(trc.c.broadcast_id == broadcast_id)
            .group_by(trc.c.state))
    counts = {str(state): int(n) for state, n in await conn.execute(stmt)}
    total = broadcast.total if broadcast.total is not None else sum(counts.values())
    return Progress(broadcast_id, broadcast.state, total, counts.get("sent", 0), counts.get("failed", 0),
                    counts.get("pending", 0))


async def has_pending(conn: AsyncConnection, broadcast_id: int) -> bool:
    stmt = sa.select(trc.c.id).where(trc.c.broadcast_id == broadcast_id, trc.c.state == "pending").limit(1)
    return (await conn.execute(stmt)).first() is not None


async def report(conn: AsyncConnection, broadcast_id: int) -> dict[str, dict[str, int]]:
    """Counts by outcome and errcode: {"sent": {"0": n}, "failed": {"43004": n, ...}, "pending": {...}}."""
    stmt = (sa.select(trc.c.state, trc.c.errcode, sa.func.count()).where(trc.c.broadcast_id == broadcast_id)
            .group_by(trc.c.state, trc.c.errcode))
    out: dict[str, dict[str, int]] = {}
    for state, errcode, n in await conn.execute(stmt):
        out.setdefault(str(state), {})[str(errcode if errcode is not None else 0)] = int(n)
    return out


async def recipients(conn: AsyncConnection, broadcast_id: int, *, state: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
    stmt = sa.select(trc.c.openid, trc.c.state, trc.c.errcode, trc.c.msgid, trc.c.delivery, trc.c.sent_at).where(
        trc.c.broadcast_id == broadcast_id)
    if state:
        stmt = stmt.where(trc.c.state == state)
    return [dict(r._mapping) for r in await conn.execute(stmt.order_by(trc.c.id).limit(limit))]
