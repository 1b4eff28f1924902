"""Where students stand, from durable facts: the funnel counts and the audience of a broadcast.

Facts per student (and, where it matters, per procedure): following the account (``students``),
identity bound (``identity_bindings``), school linked (``school_links``), a photo that passed the
instant checks (``photos.ok``), a paid order (``orders``), the latest review (``reviews``; a
re-submission is a newer row, so "rejected" means rejected and not resubmitted), and whether the
procedure was started at all (``procedures``). Stages are predicates over those facts; docs/console.md
lists them. Only students who follow the account are ever an audience (templates need a follower).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sql.tables import identity_bindings as tb
from storage.sql.tables import orders as to
from storage.sql.tables import photos as tph
from storage.sql.tables import procedures as tpr
from storage.sql.tables import reviews as tr
from storage.sql.tables import school_links as tl
from storage.sql.tables import students as ts

# Audience stages (documented enum; the console and `gradbot broadcast` accept these names).
STAGES = ("all", "not_started", "not_bound", "not_linked", "photo_not_passed", "not_paid", "not_submitted",
          "pending_review", "rejected", "approved", "not_finished")
NEEDS_PROCEDURE = frozenset(STAGES) - {"all", "not_bound", "not_linked"}
FUNNEL_STEPS = ("followed", "bound", "linked", "photo_passed", "paid", "submitted", "approved", "rejected")


class AudienceError(ValueError):
    """An audience that cannot be evaluated (unknown stage or key, missing procedure)."""


@dataclass(frozen=True, slots=True)
class Audience:
    school: str | None = None
    cohort: int | None = None
    procedure: str | None = None
    stage: str = "all"
    # Orders that count as "paid" for the procedure, as (order procedure, item) pairs; a procedure's
    # fee may be booked under another name (its fee table entry). Empty: orders of the procedure itself.
    orders: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise AudienceError(f"unknown stage {self.stage!r}; one of: {', '.join(STAGES)}")
        if self.stage in NEEDS_PROCEDURE and not self.procedure:
            raise AudienceError(f"stage {self.stage!r} needs a procedure")

    @classmethod
    def parse(cls, text: str) -> Audience:
        """``school=4142010001,cohort=2025,procedure=photo,stage=not_paid`` (every key optional)."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("school", "cohort", "procedure", "stage"):
                raise AudienceError(f"cannot read {part!r}: use school=, cohort=, procedure=, stage=")
            values[key.strip()] = value.strip() or None
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        cohort = data.get("cohort")
        try:
            cohort_value = int(cohort) if cohort not in (None, "") else None
        except (TypeError, ValueError):
            raise AudienceError(f"cohort must be a year, not {cohort!r}") from None
        orders = tuple((str(p), str(i)) for p, i in data.get("orders") or ())
        return cls(school=data.get("school") or None, cohort=cohort_value,
                   procedure=data.get("procedure") or None, stage=data.get("stage") or "all", orders=orders)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["orders"] = [list(pair) for pair in self.orders]
        return out

    def with_orders(self, orders: tuple[tuple[str, str], ...]) -> Audience:
        return Audience(self.school, self.cohort, self.procedure, self.stage, orders)


# --- facts as correlated SQL expressions ----------------------------------------------------------

def _for(procedure: str | None, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return sa.true() if procedure is None else column == procedure


def bound() -> sa.ColumnElement[bool]:
    return sa.exists().where(tb.c.openid == ts.c.openid)


def linked() -> sa.ColumnElement[bool]:
    return tl.c.openid.is_not(None)


def photo_passed(procedure: str | None) -> sa.ColumnElement[bool]:
    # A photo passes when its checks passed, or when the student accepted its fixed version.
    passed = sa.or_(tph.c.ok.is_(True), tph.c.status == "accepted")
    return sa.exists().where(tph.c.openid == ts.c.openid, passed, _for(procedure, tph.c.procedure))


def paid(procedure: str | None, orders: tuple[tuple[str, str], ...] = ()) -> sa.ColumnElement[bool]:
    which = (sa.or_(*(sa.and_(to.c.procedure == p, to.c.item == i) for p, i in orders)) if orders
             else _for(procedure, to.c.procedure))
    return sa.exists().where(to.c.openid == ts.c.openid, to.c.state == "paid", which)


def started(procedure: str | None) -> sa.ColumnElement[bool]:
    return sa.exists().where(tpr.c.openid == ts.c.openid, _for(procedure, tpr.c.name))


def latest_review(procedure: str | None) -> sa.ScalarSelect[Any]:
    return (sa.select(tr.c.state)
            .where(tr.c.openid == ts.c.openid, tr.c.state != "superseded", _for(procedure, tr.c.procedure))
            .order_by(tr.c.id.desc()).limit(1).scalar_subquery())


def _stage(audience: Audience) -> sa.ColumnElement[bool]:
    p, stage = audience.procedure, audience.stage
    review = latest_review(p)
    ready = sa.and_(bound(), linked())
    rules: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
        "all": sa.true,
        "not_started": lambda: ~started(p),
        "not_bound": lambda: ~bound(),
        "not_linked": lambda: sa.and_(bound(), ~linked()),
        "photo_not_passed": lambda: sa.and_(ready, ~photo_passed(p)),
        "not_paid": lambda: sa.and_(ready, photo_passed(p), ~paid(p, audience.orders)),
        "not_submitted": lambda: sa.and_(ready, photo_passed(p), review.is_(None)),
        "pending_review": lambda: review == "pending",
        "rejected": lambda: review == "rejected",
        "approved": lambda: review == "approved",
        "not_finished": lambda: sa.or_(review.is_(None), review != "approved"),
    }
    return rules[stage]()


def _base() -> sa.FromClause:
    return ts.outerjoin(tl, tl.c.openid == ts.c.openid)


def _filters(audience: Audience) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [ts.c.following.is_(True), _stage(audience)]
    if audience.school:
        where.append(tl.c.school_code == audience.school)
    if audience.cohort is not None:
        where.append(tl.c.cohort == audience.cohort)
    return where


def audience_query(audience: Audience) -> sa.Select[tuple[str]]:
    return sa.select(ts.c.openid).select_from(_base()).where(*_filters(audience)).order_by(ts.c.openid)


async def count(conn: AsyncConnection, audience: Audience) -> int:
    stmt = sa.select(sa.func.count()).select_from(_base()).where(*_filters(audience))
    return int((await conn.execute(stmt)).scalar_one())


async def openids(conn: AsyncConnection, audience: Audience, limit: int | None = None) -> list[str]:
    stmt = audience_query(audience)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [str(o) for o in (await conn.execute(stmt)).scalars()]


# --- the funnel -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FunnelRow:
    school_code: str | None
    school_name: str | None
    cohort: int | None
    followed: int
    bound: int
    linked: int
    photo_passed: int
    paid: int
    submitted: int
    approved: int
    rejected: int

    def counts(self) -> dict[str, int]:
        return {step: int(getattr(self, step)) for step in FUNNEL_STEPS}


def _sum(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


async def funnel(conn: AsyncConnection, *, procedure: str | None, school: str | None = None,
                 cohort: int | None = None, schools: list[str] | None = None,
                 orders: tuple[tuple[str, str], ...] = ()) -> list[FunnelRow]:
    """Counts per school and cohort; ``schools`` limits rows to a reviewer's schools (None: all)."""
    review = latest_review(procedure)
    columns = [
        _sum(ts.c.following.is_(True)).label("followed"), _sum(bound()).label("bound"),
        _sum(linked()).label("linked"), _sum(photo_passed(procedure)).label("photo_passed"),
        _sum(paid(procedure, orders)).label("paid"), _sum(review.is_not(None)).label("submitted"),
        _sum(review == "approved").label("approved"), _sum(review == "rejected").label("rejected"),
    ]
    stmt = (sa.select(tl.c.school_code, tl.c.school_name, tl.c.cohort, *columns).select_from(_base())
            .group_by(tl.c.school_code, tl.c.school_name, tl.c.cohort)
            .order_by(tl.c.school_code, tl.c.cohort))
    if school:
        stmt = stmt.where(tl.c.school_code == school)
    if cohort is not None:
        stmt = stmt.where(tl.c.cohort == cohort)
    if schools is not None:
        stmt = stmt.where(tl.c.school_code.in_(schools))
    return [FunnelRow(**row._mapping) for row in await conn.execute(stmt)]
