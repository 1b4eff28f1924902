"""Test-only control endpoints of the WeChat stand-in, under ``/_stub/`` (not part of WeChat).

They show what a student's phone would show (``inbox``), let a test or ``gradbot send`` play the
student (``interaction``), inject faults, move the clock and count calls. docs/wechat-stub.md.
"""

from __future__ import annotations

import json
import mimetypes
from functools import partial
from typing import Any

from aiohttp import web

from bot.sandbox.stub_state import Fault, StubState, normalize_path

INTERACTIONS = frozenset({"message", "click", "scan", "subscribe", "unsubscribe"})
dumps = partial(json.dumps, ensure_ascii=False)
STATE = web.AppKey("stub_state", StubState)


def reply(data: Any, status: int = 200) -> web.Response:
    """JSON as WeChat writes it: UTF-8, no \\uXXXX escapes."""
    return web.json_response(data, status=status, dumps=dumps)


def state_of(request: web.Request) -> StubState:
    return request.app[STATE]


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=dumps({"error": message}), content_type="application/json")


async def _control_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if await request.read() else {}
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


async def inbox(request: web.Request) -> web.Response:
    return reply(state_of(request).inbox.get(request.match_info["openid"], []))


async def interaction(request: web.Request) -> web.Response:
    data = await _control_body(request)
    if data.get("kind", "message") not in INTERACTIONS:
        raise _bad(f"kind must be one of {sorted(INTERACTIONS)}")
    state = state_of(request)
    state.interaction(state.openid(data.get("openid")), data.get("kind", "message"))
    return reply({"ok": True})


def _fault(data: dict[str, Any]) -> Fault:
    if not isinstance(data.get("paths", []), list):
        raise _bad("paths must be a list of API paths")
    try:
        fault = Fault(errcode=None if data.get("errcode") is None else int(data["errcode"]),
                      status=None if data.get("status") is None else int(data["status"]),
                      latency_ms=int(data.get("latency_ms", 0)), remaining=int(data.get("count", 1)),
                      paths=tuple(normalize_path(str(p)) for p in data.get("paths", [])))
    except (TypeError, ValueError):
        raise _bad("errcode, status, latency_ms and count are integers; paths a list") from None
    if fault.errcode is None and fault.status is None and not fault.latency_ms:
        raise _bad("a fault needs errcode, status or latency_ms")
    return fault


async def faults(request: web.Request) -> web.Response:
    state = state_of(request)
    state.faults.append(_fault(await _control_body(request)))
    return reply({"ok": True, "faults": len(state.faults)})


async def expire_tokens(request: web.Request) -> web.Response:
    state_of(request).expire_tokens()
    return reply({"ok": True})


async def advance(request: web.Request) -> web.Response:
    seconds = (await _control_body(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise _bad("seconds must be a number >= 0")
    state = state_of(request)
    state.offset += seconds
    return reply({"ok": True, "now": state.now()})


async def calls(request: web.Request) -> web.Response:
    return reply(dict(state_of(request).calls))


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return reply({"ok": True})


async def seed_media(request: web.Request) -> web.Response:
    """Put a file in the media store without a token: what a student's photo upload leaves behind."""
    ctype = request.content_type or "image/jpeg"
    filename = request.query.get("filename", "photo" + (mimetypes.guess_extension(ctype) or ".bin"))
    media_id, _ = state_of(request).put_media(request.query.get("type", "image"), await request.read(),
                                            ctype, filename)
    return reply({"media_id": media_id})


async def menu(request: web.Request) -> web.Response:
    return reply(state_of(request).menu)


def add_control_routes(app: web.Application) -> None:
    routes = [("GET", "inbox/{openid}", inbox), ("POST", "interaction", interaction),
              ("POST", "faults", faults), ("POST", "expire_tokens", expire_tokens),
              ("POST", "advance", advance), ("GET", "calls", calls), ("POST", "reset", reset),
              ("POST", "media", seed_media), ("GET", "menu", menu)]
    for method, path, handler in routes:
        app.router.add_route(method, "/_stub/" + path, handler)
