"""Procedure windows (admins): open/close dates per school and cohort, and automatic reminders."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from bot.console.base import console_of, form_of, render, session_of, staff
from bot.services.notify.broadcast import sync_reminders
from storage.sql import broadcasts, schools, windows
from storage.sql.base import utcnow


async def _page(request: web.Request, error: str = "", status: int = 200) -> web.StreamResponse:
    console = console_of(request)
    async with console.db.read() as conn:
        rows = [(w, await broadcasts.for_window(conn, w.id)) for w in await windows.all_windows(conn)]
        school_list = await schools.all_schools(conn)
    return render(request, "windows.html.j2", status=status, rows=rows, error=error, procedures=console.titles,
                  schools=school_list, templates=console.templates.for_use("broadcast"))


@staff("admin")
async def index(request: web.Request) -> web.StreamResponse:
    return await _page(request)


def _days(text: str) -> list[int]:
    parts = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    if any(not p.isdigit() or int(p) > 365 for p in parts):
        raise ValueError("提醒天数应为 0–365 的整数，用逗号分隔，如 7,3,1")
    return [int(p) for p in parts]


@staff("admin")
async def save(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    form = await form_of(request)
    try:
        procedure = str(form.get("procedure", ""))
        if procedure not in console.catalog:
            raise ValueError("请选择办理事项")
        opens, closes = date.fromisoformat(str(form.get("opens"))), date.fromisoformat(str(form.get("closes")))
        cohort = int(str(form.get("cohort") or 0))
        remind_template = str(form.get("remind_template") or "") or None
        async with console.db.begin() as conn:
            window = await windows.put(conn, procedure=procedure, school_code=str(form.get("school") or "*"),
                                       cohort=cohort, opens=opens, closes=closes, actor=session.user,
                                       remind_days=_days(str(form.get("remind_days", ""))),
                                       remind_template=remind_template)
            touched = await sync_reminders(conn, window.id, console.templates, console.titles, actor=session.user,
                                           now=utcnow(), rate=console.settings.broadcast_rate)
    except ValueError as exc:
        return await _page(request, error=str(exc) or "日期或年级格式不对", status=400)
    for broadcast_id in touched:
        await console.start_broadcast(broadcast_id)
    raise web.HTTPFound("/console/windows?saved=1")
