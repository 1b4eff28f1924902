"""Manual review of what a student submitted (photo, documents): the queue staff work through.

An item is ``pending`` until a reviewer decides it (``approved`` / ``rejected``); a new submission for
the same procedure supersedes an older pending one (a partial unique index allows one pending item
per student and procedure). Reviewers take items with a lease (``claimed_by`` / ``claimed_until``):
while it runs nobody else is handed the item, and a decision needs the lease (or an expired one),
so two reviewers never decide the same item. Decisions are compare-and-set on ``state``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql import audit, links, students
from storage.sql.base import utcnow
from storage.sql.errors import RecordError
from storage.sql.tables import reviews as tr

LEASE = timedelta(minutes=10)


class ReviewConflict(RecordError):
    """The item is decided already, or another reviewer holds it."""

    code = "review_conflict"


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    openid: str
    procedure: str
    photo_id: int | None
    documents: list[dict[str, Any]]
    school_code: str | None
    cohort: int | None
    state: str
    submitted_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reasons: list[Any] | None
    note: str | None


def _review(row: Any) -> Review:
    return Review(**row._mapping)


async def submit(conn: AsyncConnection, *, openid: str, procedure: str, photo_id: int | None,
                 documents: list[dict[str, Any]], at: datetime | None = None) -> int:
    """A new pending item; an older pending one for the same procedure is superseded."""
    at = at or utcnow()
    await students.ensure(conn, openid, at)
    link = await links.get(conn, openid)
    older = sa.update(tr).where(tr.c.openid == openid, tr.c.procedure == procedure, tr.c.state == "pending")
    superseded = (await conn.execute(older.values(state="superseded", claimed_by=None, claimed_until=None))).rowcount
    values = {"openid": openid, "procedure": procedure, "photo_id": photo_id, "documents": list(documents),
              "school_code": link.school_code if link else None, "cohort": link.cohort if link else None,
              "state": "pending", "submitted_at": at}
    review_id = int((await conn.execute(sa.insert(tr).values(**values).returning(tr.c.id))).scalar_one())
    await audit.record(conn, actor=openid, action="review.submit", openid=openid, at=at,
                       details={"review_id": review_id, "procedure": procedure, "superseded": superseded})
    return review_id


async def get(conn: AsyncConnection, review_id: int) -> Review | None:
    row = (await conn.execute(sa.select(tr).where(tr.c.id == review_id))).first()
    return _review(row) if row else None


def _in_scope(schools: Sequence[str] | None) -> sa.ColumnElement[bool]:
    """None: every school (admins). A reviewer with no school sees nothing."""
    return sa.true() if schools is None else tr.c.school_code.in_(list(schools))


def _free_for(reviewer: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(tr.c.claimed_until.is_(None), tr.c.claimed_until < now, tr.c.claimed_by == reviewer)


async def claim_next(conn: AsyncConnection, *, reviewer: str, schools: Sequence[str] | None,
                     now: datetime | None = None, lease: timedelta = LEASE) -> Review | None:
    """The oldest pending item nobody else holds, now leased to ``reviewer`` (their own first)."""
    now = now or utcnow()
    mine_first = sa.case((tr.c.claimed_by == reviewer, 0), else_=1)
    pick = (sa.select(tr.c.id).where(tr.c.state == "pending", _in_scope(schools), _free_for(reviewer, now))
            .order_by(mine_first, tr.c.submitted_at, tr.c.id).limit(1))
    if conn.dialect.name == "postgresql":
        # Lock only the row we take: concurrent callers skip it and each lock a different one.
        pick = pick.with_for_update(skip_locked=True)
    review_id = (await conn.execute(pick)).scalar_one_or_none()
    if review_id is None or not await claim(conn, int(review_id), reviewer=reviewer, now=now, lease=lease):
        return None
    return await get(conn, int(review_id))


async def claim(conn: AsyncConnection, review_id: int, *, reviewer: str, now: datetime | None = None,
                lease: timedelta = LEASE) -> bool:
    """Lease one item (or renew one's own lease); False when it is decided or someone else holds it."""
    now = now or utcnow()
    stmt = (sa.update(tr).where(tr.c.id == review_id, tr.c.state == "pending", _free_for(reviewer, now))
            .values(claimed_by=reviewer, claimed_until=now + lease))
    return bool((await conn.execute(stmt)).rowcount)


async def release(conn: AsyncConnection, review_id: int, *, reviewer: str) -> bool:
    stmt = (sa.update(tr).where(tr.c.id == review_id, tr.c.claimed_by == reviewer, tr.c.state == "pending")
            .values(claimed_by=None, claimed_until=None))
    return bool((await conn.execute(stmt)).rowcount)


async def decide(conn: AsyncConnection, review_id: int, *, reviewer: str, approve: bool,
                 reasons: Sequence[Mapping[str, Any]] = (), note: str = "",
                 at: datetime | None = None) -> Review:
    """Approve or reject a pending item held by ``reviewer`` (or by nobody); audited."""
    at = at or utcnow()
    state = "approved" if approve else "rejected"
    stmt = (sa.update(tr).where(tr.c.id == review_id, tr.c.state == "pending", _free_for(reviewer, at))
            .values(state=state, decided_by=reviewer, decided_at=at, reasons=[dict(r) for r in reasons],
                    note=note or None, claimed_by=None, claimed_until=None))
    if not (await conn.execute(stmt)).rowcount:
        raise ReviewConflict(f"review {review_id} is not pending or is held by another reviewer")
    review = await get(conn, review_id)
    assert review is not None
    await audit.record(conn, actor=reviewer, action=f"review.{'approve' if approve else 'reject'}",
                       openid=review.openid, at=at,
                       details={"review_id": review_id, "procedure": review.procedure,
                                "reasons": [r.get("code") for r in reasons], "note": bool(note)})
    return review


async def queue(conn: AsyncConnection, *, schools: Sequence[str] | None, limit: int = 50) -> list[Review]:
    """Pending items, oldest first."""
    stmt = (sa.select(tr).where(tr.c.state == "pending", _in_scope(schools))
            .order_by(tr.c.submitted_at, tr.c.id).limit(limit))
    return [_review(r) for r in await conn.execute(stmt)]


async def pending_count(conn: AsyncConnection, *, schools: Sequence[str] | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(tr).where(tr.c.state == "pending", _in_scope(schools))
    return int((await conn.execute(stmt)).scalar_one())


async def for_student(conn: AsyncConnection, openid: str) -> list[Review]:
    stmt = sa.select(tr).where(tr.c.openid == openid).order_by(tr.c.submitted_at.desc(), tr.c.id.desc())
    return [_review(r) for r in await conn.execute(stmt)]


async def latest(conn: AsyncConnection, openid: str, procedure: str) -> Review | None:
    stmt = (sa.select(tr).where(tr.c.openid == openid, tr.c.procedure == procedure)
            .order_by(tr.c.id.desc()).limit(1))
    row = (await conn.execute(stmt)).first()
    return _review(row) if row else None
