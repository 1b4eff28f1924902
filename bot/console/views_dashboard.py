"""Dashboard: the funnel per school and cohort for one procedure, with a bar chart and a CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.console.base import console_of, record, render, session_of, staff
from storage.sql import reviews, stages
from storage.sql.stages import FUNNEL_STEPS, FunnelRow

STEP_TITLES = {"followed": "已关注", "bound": "已实名", "linked": "已关联学校", "photo_passed": "照片通过检查",
               "paid": "已缴费", "submitted": "已提交审核", "approved": "审核通过", "rejected": "审核未通过"}


@dataclass(frozen=True)
class Filters:
    procedure: str | None
    school: str | None
    cohort: int | None

    @classmethod
    def of(cls, request: web.Request, default_procedure: str | None) -> Filters:
        q = request.query
        cohort = q.get("cohort", "").strip()
        if cohort and not cohort.isdigit():
            raise web.HTTPBadRequest(text="年级应为数字年份，如 2025。")
        return cls(q.get("procedure") or default_procedure, q.get("school") or None, int(cohort) if cohort else None)

    def query(self) -> dict[str, str]:
        out = {"procedure": self.procedure or "", "school": self.school or "", "cohort": str(self.cohort or "")}
        return {k: v for k, v in out.items() if v}


async def _rows(request: web.Request, filters: Filters) -> list[FunnelRow]:
    console, session = console_of(request), session_of(request)
    async with console.db.read() as conn:
        return await stages.funnel(conn, procedure=filters.procedure, school=filters.school, cohort=filters.cohort,
                                   schools=session.scope, orders=console.orders_for(filters.procedure))


def _totals(rows: list[FunnelRow]) -> list[dict[str, Any]]:
    totals = {step: sum(r.counts()[step] for r in rows) for step in FUNNEL_STEPS}
    top = max(totals.values(), default=0) or 1
    return [{"step": s, "title": STEP_TITLES[s], "count": totals[s], "width": round(100 * totals[s] / top, 1)}
            for s in FUNNEL_STEPS]


@staff()
async def dashboard(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    filters = Filters.of(request, next(iter(console.catalog), None))
    rows = await _rows(request, filters)
    async with console.db.read() as conn:
        waiting = await reviews.pending_count(conn, schools=session.scope)
    return render(request, "dashboard.html.j2", rows=rows, totals=_totals(rows), filters=filters,
                  procedures=console.titles, steps=FUNNEL_STEPS, step_titles=STEP_TITLES, waiting=waiting,
                  export_query=filters.query())


@staff()
async def funnel_csv(request: web.Request) -> web.StreamResponse:
    filters = Filters.of(request, next(iter(console_of(request).catalog), None))
    rows = await _rows(request, filters)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["procedure", "school_code", "school_name", "cohort", *FUNNEL_STEPS])
    for r in rows:
        writer.writerow([filters.procedure or "", r.school_code or "", r.school_name or "", r.cohort or "",
                         *r.counts().values()])
    await record(request, "console.export", what="funnel", **filters.query())
    # A BOM so Excel opens the Chinese school names as UTF-8.
    return web.Response(body=("\ufeff" + out.getvalue()).encode(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="funnel.csv"',
                                 "Cache-Control": "no-store"})
