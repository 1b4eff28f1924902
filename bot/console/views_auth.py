"""Sign-in and sign-out."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import check_password
from bot.console.base import console_of, form_of, record, render, session_of, set_cookie
from bot.console.state import SESSION
from storage.sql import audit, staff


def _next(value: str) -> str:
    """Only a path inside the console: never an open redirect."""
    return value if value.startswith("/console/") and not value.startswith("//") else "/console/"


async def login_form(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = request.get(SESSION)
    if session is not None and session.signed_in:
        raise web.HTTPFound("/console/")
    if session is None:
        session = await console.sessions.anonymous()
        request[SESSION] = session
    response = render(request, "login.html.j2", error="", username="", next=_next(request.query.get("next", "")))
    set_cookie(response, console, session)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await form_of(request)
    username, password = str(form.get("username", "")).strip()[:64], str(form.get("password", ""))
    ip = request.remote or "-"
    if await console.limiter.blocked(ip, username):
        return render(request, "login.html.j2", status=429, error="尝试次数过多，账号已暂时锁定，请 15 分钟后再试。",
                      username=username, next=_next(str(form.get("next", ""))))
    async with console.db.read() as conn:
        user = await staff.get(conn, username) if username else None
    if not check_password(user.password_hash if user else None, password) or user is None or not user.active:
        await console.limiter.failed(ip, username)
        async with console.db.begin() as conn:
            await audit.record(conn, actor=username or "-", action="console.login_failed", openid=None,
                               details={"ip": ip})
        return render(request, "login.html.j2", status=401, error="用户名或密码不正确。", username=username,
                      next=_next(str(form.get("next", ""))))
    await console.limiter.succeeded(username)
    session = await console.sessions.sign_in(request.get(SESSION), user)
    request[SESSION] = session
    async with console.db.begin() as conn:
        await staff.logged_in(conn, username)
    await record(request, "console.login", ip=ip)
    response = web.HTTPFound(_next(str(form.get("next", ""))))
    set_cookie(response, console, session)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    await record(request, "console.logout")
    await console.sessions.end(session)
    response = web.HTTPFound("/console/login")
    response.del_cookie("gb_console", path="/console/")
    raise response
