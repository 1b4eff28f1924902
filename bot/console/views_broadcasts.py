"""Deadline broadcasts (admins): compose from a template, pick the audience, preview, send or schedule,
watch progress, pause / resume / cancel, and read the report by errcode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from bot.console.base import console_of, form_of, render, session_of, staff
from bot.console.state import Console
from bot.services.notify.broadcast import CONTROLS, STAGE_TITLES, BroadcastError, Draft, control, create, preview
from bot.services.notify.limiter import CHINA
from bot.services.notify.runner import QUOTA
from storage.sql import broadcasts, schools
from storage.sql.base import utcnow
from storage.sql.broadcasts import Broadcast, Progress
from storage.sql.stages import NEEDS_PROCEDURE, STAGES, Audience, AudienceError


def _broadcast_id(request: web.Request) -> int:
    raw = request.match_info["broadcast_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


def _when(value: str) -> datetime | None:
    """A ``datetime-local`` value in China time; empty means now."""
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=CHINA)
    except ValueError:
        raise BroadcastError("发送时间格式不对") from None


def draft_of(console: Console, data: Any) -> Draft:
    """A draft from the compose form (GET for the preview, POST to send); BroadcastError when unusable."""
    template = str(data.get("template", ""))
    spec = console.templates.templates.get(template)
    names = spec.admin_variables() if spec else []
    if data.get("stage") in NEEDS_PROCEDURE and not data.get("procedure"):
        raise BroadcastError("按“所处环节”筛选时，请选择办理事项")
    try:
        audience = Audience.from_dict({k: data.get(k) for k in ("school", "cohort", "procedure", "stage")})
        rate = int(str(data.get("rate") or console.settings.broadcast_rate))
    except (AudienceError, ValueError) as exc:
        raise BroadcastError(f"发送对象或速率有误：{exc}") from None
    when = _when(str(data.get("at", ""))) if data.get("when") == "later" else None
    variables = {n: str(data.get(f"var_{n}", "")).strip()[:200] for n in names}
    return Draft(str(data.get("title", "")).strip()[:100], template, console.audience(audience), variables, when, rate)


async def _form_context(console: Console) -> dict[str, Any]:
    async with console.db.read() as conn:
        school_list = await schools.all_schools(conn)
    return {"templates": console.templates.for_use("broadcast"), "stages": STAGES, "stage_titles": STAGE_TITLES,
            "procedures": console.titles, "schools": school_list, "default_rate": console.settings.broadcast_rate}


@staff("admin")
async def index(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    async with console.db.read() as conn:
        items = [(b, await broadcasts.progress(conn, b.id)) for b in await broadcasts.recent(conn, 50)]
    return render(request, "broadcasts.html.j2", items=items)


@staff("admin")
async def compose(request: web.Request) -> web.StreamResponse:
    """The form; with ``preview=1`` it also shows the exact audience count and the rendered message."""
    console = console_of(request)
    shown, error = None, ""
    if request.query.get("preview"):
        try:
            async with console.db.read() as conn:
                shown = await preview(conn, draft_of(console, request.query), console.templates, console.titles)
        except BroadcastError as exc:
            error = str(exc)
    return render(request, "broadcast_new.html.j2", status=400 if error else 200, form=request.query, shown=shown,
                  error=error, **await _form_context(console))


@staff("admin")
async def submit(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    form = await form_of(request)
    try:
        draft = draft_of(console, form)
        async with console.db.begin() as conn:
            created = await create(conn, draft, console.templates, console.titles, actor=session.user, now=utcnow())
    except BroadcastError as exc:
        return render(request, "broadcast_new.html.j2", status=400, form=form, shown=None, error=str(exc),
                      **await _form_context(console))
    await console.start_broadcast(created.id)
    raise web.HTTPFound(f"/console/broadcasts/{created.id}")


async def _state_of(request: web.Request) -> tuple[Broadcast, Progress, dict[str, dict[str, int]]]:
    console = console_of(request)
    async with console.db.read() as conn:
        b = await broadcasts.get(conn, _broadcast_id(request))
        progress = await broadcasts.progress(conn, b.id) if b else None
        if b is None or progress is None:
            raise web.HTTPNotFound()
        return b, progress, await broadcasts.report(conn, b.id)


@staff("admin")
async def show(request: web.Request) -> web.StreamResponse:
    b, progress, report = await _state_of(request)
    return render(request, "broadcast.html.j2", b=b, progress=progress, report=report, stage_titles=STAGE_TITLES,
                  titles=console_of(request).titles, quota=QUOTA)


@staff("admin")
async def status(request: web.Request) -> web.StreamResponse:
    _, progress, report = await _state_of(request)
    return web.json_response({**progress.to_json(), "report": report}, headers={"Cache-Control": "no-store"})


@staff("admin")
async def control_view(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    broadcast_id, action = _broadcast_id(request), request.match_info["action"]
    if action not in CONTROLS:
        raise web.HTTPNotFound()
    async with console.db.begin() as conn:
        if await broadcasts.get(conn, broadcast_id) is None:
            raise web.HTTPNotFound()
        state = await control(conn, broadcast_id, action, actor=session.user, now=utcnow())
    if state is None:
        raise web.HTTPConflict(text="当前状态下不能执行这个操作。")
    if action == "resume":
        await console.start_broadcast(broadcast_id)
    raise web.HTTPFound(f"/console/broadcasts/{broadcast_id}")
