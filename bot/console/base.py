"""Request plumbing shared by the console views: session and CSRF middleware, error pages, access rules."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from aiohttp import web

from bot.console.auth import COOKIE, Session
from bot.console.render import environment, page
from bot.console.state import CONSOLE, SESSION, Console
from storage.sql import audit
from storage.sql.errors import RecordError

log = logging.getLogger("bot.console")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERRORS = {
    400: "请求有误，请检查后重试。",
    401: "请先登录。",
    403: "没有权限执行这个操作。",
    404: "找不到这个页面或记录。",
    405: "不支持这种请求方式。",
    409: "这条记录刚被别人处理过，请刷新后再看。",
    413: "提交的内容太大。",
    429: "尝试次数过多，请 15 分钟后再试。",
    503: "控制台暂不可用：需要 Redis 与数据库。",
}


def console_of(request: web.Request) -> Console:
    console = request.config_dict.get(CONSOLE)
    if console is None:
        raise web.HTTPServiceUnavailable()
    return console


def session_of(request: web.Request) -> Session:
    session: Session | None = request.get(SESSION)
    if session is None or not session.signed_in:
        raise web.HTTPUnauthorized()
    return session


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    session = request.get(SESSION)
    return page(console_of(request).env, name, status, session=session, csrf=session.csrf if session else "",
                path=request.path, **context)


async def form_of(request: web.Request) -> dict[str, Any]:
    """The posted form (fields repeated for checkboxes come back as lists)."""
    posted = await request.post()
    out: dict[str, Any] = {}
    for key in posted:
        values = [str(v) for v in posted.getall(key)]
        out[key] = values if len(values) > 1 else values[0]
    return out


def listed(form: dict[str, Any], key: str) -> list[str]:
    value = form.get(key, [])
    return value if isinstance(value, list) else [value]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A friendly page (or JSON) for every refusal; never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(request, exc.status, exc.text if exc.text and not exc.text.startswith(str(exc.status)) else "")
    except RecordError as exc:
        log.warning("console %s %s: %s", request.method, request.path, exc.code)
        return _error(request, 409, "")
    except Exception:
        log.exception("console %s %s failed", request.method, request.path)
        return _error(request, 500, "")


def _error(request: web.Request, status: int, detail: str) -> web.StreamResponse:
    message = detail or ERRORS.get(status, "出了点问题，请稍后再试。")
    if "application/json" in request.headers.get("Accept", "") or request.path.endswith(".json"):
        return web.json_response({"error": message}, status=status)
    if status == 401 and request.method == "GET":
        raise web.HTTPFound(request.app.router["login"].url_for().with_query(next=request.path_qs))
    try:
        return render(request, "error.html.j2", status=status, status_code=status, message=message)
    except web.HTTPException:
        return page(environment(), "error.html.j2", status, session=None, csrf="", path=request.path,
                    status_code=status, message=message)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the session; refuse any state-changing request without the session's CSRF token."""
    if request.path.startswith("/console/static/"):
        return await handler(request)
    console = console_of(request)
    session = await console.sessions.load(request.cookies.get(COOKIE))
    request[SESSION] = session
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        token = request.headers.get("X-CSRF-Token")
        if token is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            token = str((await request.post()).get("_csrf", ""))
        if session is None or not session.csrf_ok(token):
            log.warning("console: %s %s refused, CSRF token missing or wrong", request.method, request.path)
            raise web.HTTPForbidden(text="表单已过期或来源不明，请刷新页面后重试。")
    return await handler(request)


def staff(role: str | None = None) -> Callable[[Handler], Handler]:
    """Signed-in staff only; ``role="admin"`` for admin-only views."""
    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            if role == "admin" and not session.is_admin:
                raise web.HTTPForbidden()
            return await handler(request)
        return inner
    return wrap


def in_scope(session: Session, school_code: str | None) -> bool:
    return session.scope is None or (school_code is not None and school_code in session.scope)


async def record(request: web.Request, action: str, openid: str | None = None, **details: Any) -> None:
    """Audit a console action: who (the signed-in user), what, when."""
    console, session = console_of(request), session_of(request)
    async with console.db.begin() as conn:
        await audit.record(conn, actor=session.user, action=action, openid=openid, details=details)


def set_cookie(response: web.StreamResponse, console: Console, session: Session) -> None:
    response.set_cookie(COOKIE, session.sid, httponly=True, samesite="Strict", path="/console/",
                        secure=console.settings.console_cookie_secure,
                        max_age=console.settings.console_session_ttl)
