"""Template messages sent to one student (review results): what was sent, its outcome and delivery.

``client_msg_id`` is unique, so recording the same notification twice is a no-op that returns the
first row; WeChat also refuses to deliver a repeated ``client_msg_id`` within 10 minutes. The
``msgid`` WeChat returns is stored, so the ``TEMPLATESENDJOBFINISH`` event can be matched to the row
(``record_delivery``, which also looks in broadcast recipients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import students
from storage.sql.base import upsert, utcnow
from storage.sql.tables import broadcast_recipients as trc
from storage.sql.tables import notifications as tn


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    openid: str
    kind: str
    ref: str
    template: str
    template_id: str
    data: dict[str, Any]
    url: str | None
    token: str
    client_msg_id: str
    state: str
    errcode: int | None
    error: str | None
    attempts: int
    msgid: int | None
    delivery: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


def _notification(row: Any) -> Notification:
    return Notification(**row._mapping)


async def create(conn: AsyncConnection, *, openid: str, kind: str, ref: str, template: str, template_id: str,
                 data: Mapping[str, Any], url: str | None, token: str, client_msg_id: str,
                 at: datetime | None = None) -> Notification:
    """A pending notification; the existing row when ``client_msg_id`` was recorded before."""
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    values = {"openid": openid, "kind": kind, "ref": ref, "template": template, "template_id": template_id,
              "data": dict(data), "url": url, "token": token, "client_msg_id": client_msg_id,
              "state": "pending", "attempts": 0, "created_at": at}
    await conn.execute(upsert(conn, tn).values(**values).on_conflict_do_nothing(index_elements=["client_msg_id"]))
    found = await by_client_msg_id(conn, client_msg_id)
    assert found is not None
    return found


async def by_client_msg_id(conn: AsyncConnection, client_msg_id: str) -> Notification | None:
    row = (await conn.execute(sa.select(tn).where(tn.c.client_msg_id == client_msg_id))).first()
    return _notification(row) if row else None


async def by_token(conn: AsyncConnection, token: str) -> Notification | None:
    row = (await conn.execute(sa.select(tn).where(tn.c.token == token))).first()
    return _notification(row) if row else None


async def attempt(conn: AsyncConnection, notification_id: int) -> int:
    """Count one more try; returns the new count."""
    stmt = (sa.update(tn).where(tn.c.id == notification_id).values(attempts=tn.c.attempts + 1)
            .returning(tn.c.attempts))
    return int((await conn.execute(stmt)).scalar_one())


async def mark_sent(conn: AsyncConnection, notification_id: int, msgid: int, at: datetime | None = None) -> None:
    stmt = (sa.update(tn).where(tn.c.id == notification_id)
            .values(state="sent", msgid=msgid, sent_at=at or utcnow(), errcode=None, error=None))
    await conn.execute(stmt)


async def mark_failed(conn: AsyncConnection, notification_id: int, errcode: int | None, error: str) -> None:
    stmt = sa.update(tn).where(tn.c.id == notification_id).values(state="failed", errcode=errcode, error=error[:200])
    await conn.execute(stmt)


async def record_delivery(conn: AsyncConnection, msgid: int, status: str, at: datetime | None = None) -> str | None:
    """Store a TEMPLATESENDJOBFINISH status; which record it matched ("notification", "broadcast") or None."""
    at = at or utcnow()
    status = status[:64]
    stmt = sa.update(tn).where(tn.c.msgid == msgid).values(delivery=status, delivered_at=at)
    if (await conn.execute(stmt)).rowcount:
        return "notification"
    if (await conn.execute(sa.update(trc).where(trc.c.msgid == msgid).values(delivery=status))).rowcount:
        return "broadcast"
    return None


async def stale_pending(conn: AsyncConnection, before: datetime, limit: int = 200) -> list[str]:
    """client_msg_ids of notifications still pending since before ``before`` (their job was lost or paused)."""
    stmt = (sa.select(tn.c.client_msg_id).where(tn.c.state == "pending", tn.c.created_at < before)
            .order_by(tn.c.id).limit(limit))
    return [str(c) for c in (await conn.execute(stmt)).scalars()]


async def for_student(conn: AsyncConnection, openid: str, limit: int = 50) -> list[Notification]:
    stmt = sa.select(tn).where(tn.c.openid == openid).order_by(tn.c.id.desc()).limit(limit)
    return [_notification(r) for r in await conn.execute(stmt)]
