"""The pay page, its JSON helpers, the snsapi_base OAuth callback, and ``POST /pay/notify``.

``GET /pay/{token}``: a sealed link (no order number or openid in the URL). Inside WeChat the page
first learns the payer's openid by silent OAuth and keeps it in a sealed cookie; it must be the
student's. The page then prepays by JSAPI (``POST /pay/{token}/prepay``) and polls
``GET /pay/{token}/status``, which asks WeChat Pay: the page's own "ok" is only a hint. Elsewhere it
shows the Native ``code_url`` as a QR code. The notification endpoint lives in
:mod:`bot.web.pay_notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis
import segno
from aiohttp import web

from bot import keys
from bot.config import PAY_API_DEFAULT, Settings
from bot.records import open_database
from bot.services.payments import oauth
from bot.services.payments.client import PayClient
from bot.services.payments.config import PayConfig, link_secret
from bot.services.payments.errors import AlreadyPaid, PayApiError, PaymentError, UnknownFee, WrongPayer
from bot.services.payments.fees import load_fees
from bot.services.payments.followup import tell_student
from bot.services.payments.links import PAYER_TTL, LinkClaims, Sealer, TokenExpired, TokenInvalid
from bot.services.payments.reconcile import INTERVAL, Reconciler
from bot.services.payments.service import Payments
from bot.web import pay_notify
from bot.web.pay_templates import html_environment
from storage.keys import KeyBuilder
from storage.lease import Lease
from storage.sql.orders import Order

log = logging.getLogger("bot.web.pay")
PAYER_COOKIE = "gb_payer"
RECONCILER: web.AppKey[asyncio.Task[None]] = web.AppKey("pay_reconciler")
RECONCILING = web.AppKey("pay_reconciling", Reconciler)  # the object the RECONCILER task runs
# Failures that get a friendly "try again later", never a stack trace.
SOFT_ERRORS: tuple[type[BaseException], ...] = (*pay_notify.DB_ERRORS, PaymentError)


def add_pay_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_pay_ctx)
    app.router.add_get("/pay/oauth", oauth_callback)
    app.router.add_post("/pay/notify", pay_notify.notify)
    app.router.add_get("/pay/{token}", page)
    app.router.add_post("/pay/{token}/prepay", prepay)
    app.router.add_get("/pay/{token}/status", status)


async def _pay_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    if not settings.pay_mchid:
        log.info("payments are off (GRADBOT_PAY_MCHID is not set)")
        yield
        return
    config = PayConfig.from_settings(settings)  # a half-configured merchant stops the start-up
    async with (open_database(settings) as db, PayClient(config) as client, aiohttp.ClientSession() as http,
                _lease_redis(settings) as redis):
        payments = Payments(config, client, db, load_fees(), Sealer(link_secret(settings)), app[keys.METRICS],
                            app[keys.CLOCK])
        app[keys.PAYMENTS], app[keys.PAY_HTTP] = payments, http
        # One reconciliation pass per interval across every worker (docs/payments.md), not one per process.
        lease = None if redis is None else Lease(
            redis, KeyBuilder(settings.redis_prefix, settings.wechat_appid).reconcile_lease(), INTERVAL)
        app[RECONCILING] = reconciler = Reconciler(payments, lambda order: follow_up(app, order), interval=INTERVAL,
                                                   lease=lease)
        app[RECONCILER] = asyncio.get_running_loop().create_task(reconciler.loop())
        yield
        reconciler.stopping = True  # ends the loop even if a Redis call swallows the cancel (see Ticker.stop)
        app[RECONCILER].cancel()
        await asyncio.gather(app[RECONCILER], return_exceptions=True)


def _lease_redis(settings: Settings) -> contextlib.AbstractAsyncContextManager[aioredis.Redis | None]:
    """The Redis client of the reconciliation lease; none with memory:// state (one process only)."""
    if settings.memory_state:
        return contextlib.nullcontext(None)
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)


async def follow_up(app: web.Application, order: Order) -> None:
    await tell_student(app[keys.PIPELINE], app[keys.JOBS], order)


# -- responses ---------------------------------------------------------------------------------

_SECURITY_HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _html(template: str, status: int = 200, **variables: Any) -> web.Response:
    text = html_environment().get_template(f"pay/{template}.html.j2").render(**variables)
    return web.Response(text=text, status=status, content_type="text/html", headers=_SECURITY_HEADERS)


def _notice(reason: str, status: int) -> web.Response:
    return _html("notice", status=status, reason=reason)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=_SECURITY_HEADERS)


def _payments(request: web.Request) -> Payments | None:
    return request.app.get(keys.PAYMENTS)


def _claims(payments: Payments, token: str) -> LinkClaims | str:
    """The link's claims, or the reason (a template key) it cannot be used."""
    try:
        claims = payments.sealer.open_link(token, payments.clock())
        payments.fee(claims)
    except TokenExpired:
        return "link_expired"
    except (TokenInvalid, UnknownFee):
        return "link_invalid"
    return claims


def _resolve(request: web.Request, token: str, as_json: bool) -> tuple[Payments, LinkClaims] | web.Response:
    """The service and the link's claims, or the answer to give when there are none."""
    payments = _payments(request)
    if payments is None:
        return _json({"error": "unavailable"}, 503) if as_json else _notice("unavailable", 503)
    claims = _claims(payments, token)
    if isinstance(claims, str):
        status = 410 if claims == "link_expired" else 404
        return _json({"error": claims}, status) if as_json else _notice(claims, status)
    return payments, claims


def _in_wechat(request: web.Request) -> bool:
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def _payer(request: web.Request, payments: Payments) -> str:
    cookie = request.cookies.get(PAYER_COOKIE, "")
    if not cookie:
        return ""
    try:
        return payments.sealer.open_payer(cookie, payments.clock())
    except (TokenInvalid, TokenExpired):
        return ""


# -- the page ----------------------------------------------------------------------------------

async def page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    resolved = _resolve(request, token, as_json=False)
    if isinstance(resolved, web.Response):
        return resolved
    payments, claims = resolved
    try:
        if _in_wechat(request):
            return await _jsapi_page(request, payments, token, claims)
        return await _native_page(payments, token, claims)
    except AlreadyPaid:
        return _html("paid", fee=payments.fee(claims))
    except SOFT_ERRORS as exc:
        log.warning("pay page failed: %s", getattr(exc, "code", type(exc).__name__))
        return _notice("unavailable", 503)


async def _jsapi_page(request: web.Request, payments: Payments, token: str, claims: LinkClaims) -> web.StreamResponse:
    payer = _payer(request, payments)
    if not payer:
        redirect = f"{payments.config.public_url}/pay/oauth?t={quote(token)}"
        raise web.HTTPFound(oauth.authorize_url(request.app[keys.SETTINGS], payments.config.appid, redirect, "pay"))
    if payer != claims.openid:
        return _notice("wrong_payer", 403)
    await payments.open_order(claims)  # raises AlreadyPaid for a settled fee
    return _html("page", mode="jsapi", token=token, fee=payments.fee(claims), bridge=_bridge(payments))


async def _native_page(payments: Payments, token: str, claims: LinkClaims) -> web.StreamResponse:
    order, code_url = await payments.native(claims)
    qr = segno.make(code_url, error="m").svg_inline(scale=6, title="微信支付二维码")
    cashier = ""
    if payments.config.api_base != PAY_API_DEFAULT:  # the sandbox's cashier page stands in for scanning
        cashier = f"{payments.config.api_base}/__sandbox/cashier/{code_url.rsplit('pr=', 1)[-1]}"
    return _html("page", mode="native", token=token, fee=payments.fee(claims), qr=qr, cashier=cashier,
                 bridge="", amount_fen=order.amount_fen)


def _bridge(payments: Payments) -> str:
    """The sandbox's stand-in for WeixinJSBridge, only when talking to the sandbox."""
    return "" if payments.config.api_base == PAY_API_DEFAULT else f"{payments.config.api_base}/__sandbox/bridge.js"


async def prepay(request: web.Request) -> web.Response:
    resolved = _resolve(request, request.match_info["token"], as_json=True)
    if isinstance(resolved, web.Response):
        return resolved
    payments, claims = resolved
    payer = _payer(request, payments)
    if not payer:
        return _json({"error": "no_payer"}, 401)
    try:
        return _json(await payments.jsapi(claims, payer))
    except WrongPayer:
        return _json({"error": "wrong_payer"}, 403)
    except AlreadyPaid:
        return _json({"error": "already_paid", "state": "paid"}, 409)
    except PayApiError as exc:
        log.warning("prepay failed: %s", exc.code)
        return _json({"error": "pay_unavailable"}, 502)
    except SOFT_ERRORS:
        return _json({"error": "unavailable"}, 503)


async def status(request: web.Request) -> web.Response:
    resolved = _resolve(request, request.match_info["token"], as_json=True)
    if isinstance(resolved, web.Response):
        return resolved
    payments, claims = resolved
    try:
        return _json({"state": await payments.status(claims)})
    except SOFT_ERRORS:
        return _json({"error": "unavailable"}, 503)


# -- OAuth -------------------------------------------------------------------------------------

async def oauth_callback(request: web.Request) -> web.StreamResponse:
    token = request.query.get("t", "")
    resolved = _resolve(request, token, as_json=False)
    if isinstance(resolved, web.Response):
        return resolved
    payments, claims = resolved
    code = request.query.get("code", "")
    if not code:  # the user refused, or the URL was opened by hand
        return _notice("oauth_failed", 400)
    try:
        openid = await oauth.exchange_code(request.app[keys.PAY_HTTP], request.app[keys.SETTINGS],
                                           payments.config.appid, code)
    except oauth.OAuthFailed:
        return _notice("oauth_failed", 400)
    if openid != claims.openid:
        return _notice("wrong_payer", 403)
    response = web.HTTPFound(f"/pay/{quote(token)}")
    response.set_cookie(PAYER_COOKIE, payments.sealer.payer(openid, payments.clock()), max_age=int(PAYER_TTL),
                        path="/pay", httponly=True, samesite="Lax",
                        secure=payments.config.public_url.startswith("https://"))
    raise response
