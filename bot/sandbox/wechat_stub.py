"""A local stand-in for the WeChat API (``gradbot wechat-stub``), for tests, benchmarks and the demo.

Same paths, JSON shapes and errcodes as ``api.weixin.qq.com/cgi-bin/`` for the endpoints gradbot
uses; rules live in :mod:`bot.sandbox.stub_state`. Test-only control endpoints under ``/_stub/``
show what each student received, open service windows, inject faults and move the clock.
docs/wechat-stub.md lists them all.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.sandbox.oauth_stub import add_oauth_routes
from bot.sandbox.stub_control import STATE, add_control_routes, dumps, reply, state_of
from bot.sandbox.stub_state import StubConfig, StubError, StubState, normalize_path
from bot.wechat.menu import validate_menu

_ESCAPED = re.compile(rb"\\u[0-9a-fA-F]{4}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(**extra: Any) -> web.Response:
    return reply({"errcode": 0, "errmsg": "ok", **extra})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/cgi-bin/"):
        try:
            return await handler(request)
        except StubError as exc:
            return reply({"error": exc.errmsg, "errcode": exc.errcode}, status=400)
    state = request.app[STATE]
    path = normalize_path(request.path)
    state.calls[path] += 1
    try:
        return await _faulty(state, path) or await handler(request)
    except StubError as exc:
        body = {"errcode": exc.errcode, "errmsg": f"{exc.errmsg} rid: {state.rid()}"}
        # media/get answers errors as JSON text, not as the image the caller hoped for.
        ctype = "text/plain" if path == "media/get" else "application/json"
        return web.Response(text=dumps(body), content_type=ctype)


async def _faulty(state: StubState, path: str) -> web.Response | None:
    fault = state.take_fault(path)
    if fault is None:
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if fault.status:
        return web.Response(status=fault.status, text="stub fault")
    if fault.errcode is not None:
        raise StubError(fault.errcode)
    return None


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise StubError(44002)
    try:
        data = json.loads(raw)
    except ValueError:
        raise StubError(47001) from None
    if not isinstance(data, dict):
        raise StubError(47001)
    return data


def _auth(request: web.Request) -> StubState:
    state = state_of(request)
    state.check_token(request.query.get("access_token"))
    return state


# -- tokens ------------------------------------------------------------------------------------

async def stable_token(request: web.Request) -> web.Response:
    state, data = state_of(request), await _body(request)
    state.check_credentials(data.get("grant_type"), data.get("appid"), data.get("secret"))
    token, expires_in = state.stable_token(bool(data.get("force_refresh")))
    return reply({"access_token": token, "expires_in": expires_in})


async def classic_token(request: web.Request) -> web.Response:
    state, q = state_of(request), request.query
    state.check_credentials(q.get("grant_type"), q.get("appid"), q.get("secret"))
    token, expires_in = state.classic_token()
    return reply({"access_token": token, "expires_in": expires_in})


# -- messages ----------------------------------------------------------------------------------

def _cs_content(state: StubState, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = data.get("msgtype")
    part = data.get(kind) if isinstance(kind, str) else None
    if kind not in ("text", "image", "news") or not isinstance(part, dict):
        raise StubError(40008)
    if kind == "text" and not str(part.get("content") or "").strip():
        raise StubError(44004)
    if kind == "image":
        state.get_media(part.get("media_id"))
    articles = part.get("articles")
    if kind == "news" and not (isinstance(articles, list) and len(articles) == 1):
        raise StubError(45008)
    return kind, part


async def custom_send(request: web.Request) -> web.Response:
    state, data = _auth(request), await _body(request)
    openid = state.openid(data.get("touser"))
    kind, part = _cs_content(state, data)
    state.consume_cs(openid)
    state.deliver(openid, kind, part, "cs")
    return _ok()


async def custom_typing(request: web.Request) -> web.Response:
    state, data = _auth(request), await _body(request)
    command = data.get("command")
    if command not in ("Typing", "CancelTyping"):
        raise StubError(47001)
    state.typing(state.openid(data.get("touser")), command == "Typing")
    return _ok()


async def template_send(request: web.Request) -> web.Response:
    state, data = _auth(request), await _body(request)
    fields = state.template_fields(data.get("template_id"))
    openid = state.openid(data.get("touser"))
    if not state.user(openid).followed:
        raise StubError(43004)
    state.check_fields(fields, data.get("data"))
    msgid, new = state.template_msgid(openid, data.get("client_msg_id"))
    if new:
        payload = {k: data.get(k) for k in ("template_id", "data", "url") if data.get(k) is not None}
        state.deliver(openid, "template", payload, "template", msgid=msgid)
    return _ok(msgid=msgid)


# -- media, users, menu ------------------------------------------------------------------------

async def media_upload(request: web.Request) -> web.Response:
    state = _auth(request)
    try:
        form = await request.post()
    except ValueError:  # a body that claims to be multipart and is not
        raise StubError(41005) from None
    part = form.get("media")
    if not isinstance(part, web.FileField):
        raise StubError(41005)
    kind = request.query.get("type", "")
    media_id, created_at = state.put_media(kind, part.file.read(), part.content_type, part.filename)
    return reply({"type": kind, "media_id": media_id, "created_at": created_at})


async def media_get(request: web.Request) -> web.Response:
    state = _auth(request)
    media_id = request.query.get("media_id", "")
    stored = state.get_media(media_id)
    ext = mimetypes.guess_extension(stored.content_type) or ".bin"
    headers = {"Content-Disposition": f'attachment; filename="{media_id}{ext}"'}
    return web.Response(body=stored.data, content_type=stored.content_type, headers=headers)


async def user_info(request: web.Request) -> web.Response:
    state = _auth(request)
    openid = request.query.get("openid")
    user = state.user(openid)
    if not user.followed:
        return reply({"subscribe": 0, "openid": openid})
    return reply({"subscribe": 1, "openid": openid, "subscribe_time": user.subscribe_time, "remark": "",
                  "groupid": 0, "tagid_list": [], "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0,
                  "qr_scene_str": ""})


async def menu_create(request: web.Request) -> web.Response:
    state = _auth(request)
    if _ESCAPED.search(await request.read()):
        raise StubError(40033)
    menu = await _body(request)
    problems = validate_menu(menu)
    if problems:
        raise StubError(problems[0].errcode, problems[0].errmsg)
    state.menu = menu
    return _ok()


def create_stub_app(config: StubConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=16 << 20)
    app[STATE] = StubState(config or StubConfig())
    cgi = [("POST", "stable_token", stable_token), ("GET", "token", classic_token),
           ("POST", "message/custom/send", custom_send), ("POST", "message/custom/typing", custom_typing),
           ("POST", "message/template/send", template_send), ("POST", "media/upload", media_upload),
           ("GET", "media/get", media_get), ("GET", "user/info", user_info),
           ("POST", "menu/create", menu_create)]
    for method, path, handler in cgi:
        app.router.add_route(method, "/cgi-bin/" + path, handler)
    add_control_routes(app)
    add_oauth_routes(app, app[STATE].config.appid, app[STATE].config.secret, app[STATE].now)
    return app
