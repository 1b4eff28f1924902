"""Web OAuth (``snsapi_base``) for the WeChat stand-in: the authorize page and the code exchange.

``GET /connect/oauth2/authorize`` stands in for open.weixin.qq.com: it redirects to
``redirect_uri?code=…&state=…`` as the signed-in WeChat user. Who that is: the openid set with
``POST /_stub/oauth/user {"openid": …}`` (tests), else a small form asks (people trying the demo).
``GET /sns/oauth2/access_token`` exchanges a code once, within 5 minutes (40029 otherwise), with
the errcodes of the real endpoint for a wrong appid, secret or grant type.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from aiohttp import web

CODE_TTL = 300.0


@dataclass
class OAuthState:
    appid: str
    secret: str
    clock: Callable[[], float]
    user: str = ""  # the openid of the simulated signed-in WeChat user
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (openid, issued)
    exchanged: int = 0


OAUTH = web.AppKey("oauth_stub", OAuthState)


def add_oauth_routes(app: web.Application, appid: str, secret: str, clock: Callable[[], float]) -> None:
    app[OAUTH] = OAuthState(appid, secret, clock)
    app.router.add_get("/connect/oauth2/authorize", authorize)
    app.router.add_get("/sns/oauth2/access_token", access_token)
    app.router.add_post("/_stub/oauth/user", set_user)


def _error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(6)}"})


async def authorize(request: web.Request) -> web.Response:
    state, q = request.app[OAUTH], request.query
    redirect_uri = q.get("redirect_uri", "")
    if q.get("appid") != state.appid:
        return web.Response(status=400, text="10016 appid mismatch (stub)")
    if q.get("scope") not in ("snsapi_base", "snsapi_userinfo") or q.get("response_type") != "code":
        return web.Response(status=400, text="10005 insufficient scope or bad response_type (stub)")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return web.Response(status=400, text="10003 redirect_uri invalid (stub)")
    openid = q.get("as_openid", "") or state.user
    if not openid:
        return _who_are_you(request)
    code = secrets.token_hex(16)
    state.codes[code] = (openid, state.clock())
    sep = "&" if "?" in redirect_uri else "?"
    raise web.HTTPFound(redirect_uri + sep + urlencode({"code": code, "state": q.get("state", "")}))


def _who_are_you(request: web.Request) -> web.Response:
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in request.query.items())
    page = ('<!doctype html><html lang="en"><meta name="viewport" content="width=device-width">'
            '<title>WeChat stand-in: sign in</title><form method="get">'
            f'{fields}<label>openid of the simulated WeChat user <input name="as_openid" required></label>'
            '<button>Continue</button></form></html>')
    return web.Response(text=page, content_type="text/html")


async def access_token(request: web.Request) -> web.Response:
    state, q = request.app[OAUTH], request.query
    if q.get("grant_type") != "authorization_code":
        return _error(40002, "invalid grant_type")
    if q.get("appid") != state.appid:
        return _error(40013, "invalid appid")
    if q.get("secret") != state.secret:
        return _error(40125, "invalid appsecret")
    issued = state.codes.pop(q.get("code", ""), None)
    if issued is None or state.clock() - issued[1] > CODE_TTL:
        return _error(40029, "invalid code")
    state.exchanged += 1
    return web.json_response({"access_token": "STUB_WEB_" + secrets.token_urlsafe(24), "expires_in": 7200,
                              "refresh_token": "STUB_REFRESH_" + secrets.token_urlsafe(24),
                              "openid": issued[0], "scope": "snsapi_base", "is_snapshotuser": 0})


async def set_user(request: web.Request) -> web.Response:
    data = await request.json() if await request.read() else {}
    openid = str(data.get("openid", "")) if isinstance(data, dict) else ""
    request.app[OAUTH].user = openid
    return web.json_response({"ok": True, "user": openid})
