"""A local stand-in for WeChat Pay API v3 (``gradbot pay-sandbox``), used by tests and the demo.

WeChat Pay has no v3 sandbox (reference/pay-notify-identity.md §1.6), so this one follows the wire
protocol closely enough for the real SDK (wechatpayv3) to talk to it: it verifies the merchant's
``Authorization`` signature and ±5-minute timestamp (401 SIGN_ERROR otherwise), signs every response
with its platform key in public-key mode (including empty 204s), and enforces the order rules in
:mod:`bot.sandbox.pay_state`. ``/__sandbox/…`` routes are not WeChat's: a cashier for people and
tests, the JSAPI bridge a browser page can call instead of ``WeixinJSBridge``, and switches that
inject duplicates, reordering, probes and forgeries (:mod:`bot.sandbox.pay_control`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.sandbox import pay_sign
from bot.sandbox.pay_context import (
    SANDBOX,
    Handler,
    Sandbox,
    SandboxConfig,
    dumps,
    notify_refund,
    read_json,
    sandbox_of,
)
from bot.sandbox.pay_control import add_control_routes
from bot.sandbox.pay_notify import Dispatcher
from bot.sandbox.pay_state import OrderBook, SandboxError

__all__ = ["SANDBOX", "Sandbox", "SandboxConfig", "create_pay_sandbox"]
AUTH_WINDOW = 300


# -- signing and authentication ----------------------------------------------------------------

def _signed(sandbox: Sandbox, status: int, data: Any = None) -> web.Response:
    body = "" if data is None else dumps(data)
    timestamp, nonce_str = str(int(sandbox.config.wall())), pay_sign.nonce()
    headers = {
        "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Serial": sandbox.config.keys.public_key_id, "Wechatpay-Signature-Type": pay_sign.SCHEMA,
        "Wechatpay-Signature": pay_sign.sign(sandbox.platform_key,
                                             pay_sign.response_message(timestamp, nonce_str, body)),
        "Request-ID": pay_sign.nonce(24),
    }
    if data is None:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def _check_authorization(sandbox: Sandbox, request: web.Request, body: str) -> None:
    try:
        auth = pay_sign.parse_authorization(request.headers.get("Authorization", ""))
    except pay_sign.BadAuthorization as exc:
        raise SandboxError(401, "SIGN_ERROR", f"签名错误：{exc}") from None
    keys = sandbox.config.keys
    if auth.mchid != keys.mchid or auth.serial_no != keys.serial_no:
        raise SandboxError(401, "SIGN_ERROR", "商户号或证书序列号不匹配")
    if abs(sandbox.config.wall() - auth.timestamp) > AUTH_WINDOW:
        raise SandboxError(401, "SIGN_ERROR", "请求时间戳超出 5 分钟")
    message = pay_sign.request_message(request.method, request.raw_path, auth, body)
    if not pay_sign.verify(sandbox.merchant_key, message, auth.signature):
        raise SandboxError(401, "SIGN_ERROR", "签名错误")


@web.middleware
async def _v3(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v3/"):
        return await handler(request)
    sandbox = sandbox_of(request)
    try:
        _check_authorization(sandbox, request, (await request.read()).decode("utf-8", "replace"))
        return await handler(request)
    except SandboxError as exc:
        return _signed(sandbox, exc.status, {"code": exc.code, "message": exc.message})


# -- WeChat Pay API v3 -------------------------------------------------------------------------

async def prepay_jsapi(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    order = sandbox.book.place("JSAPI", await read_json(request))
    return _signed(sandbox, 200, {"prepay_id": next(reversed(order.prepays))})


async def prepay_native(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    order = sandbox.book.place("NATIVE", await read_json(request))
    return _signed(sandbox, 200, {"code_url": order.code_url})


async def query_by_out_trade_no(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    order = sandbox.book.get(request.match_info["no"], request.query.get("mchid"))
    return _signed(sandbox, 200, sandbox.book.transaction(order))


async def query_by_transaction_id(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    order = sandbox.book.by_transaction(request.match_info["tid"], request.query.get("mchid"))
    return _signed(sandbox, 200, sandbox.book.transaction(order))


async def close(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    sandbox.book.close(request.match_info["no"], (await read_json(request)).get("mchid"))
    return _signed(sandbox, 204)


async def refund(request: web.Request) -> web.Response:
    sandbox, body = sandbox_of(request), await read_json(request)
    known = str(body.get("out_refund_no", "")) in sandbox.book.refunds
    created = sandbox.book.refund(body)
    if not known and body.get("notify_url"):
        notify_refund(sandbox, str(body["notify_url"]), created)
    return _signed(sandbox, 200, sandbox.book.refund_body(created))


async def refund_query(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    return _signed(sandbox, 200, sandbox.book.refund_body(sandbox.book.refund_of(request.match_info["no"])))


async def certificates(request: web.Request) -> web.Response:
    raise SandboxError(404, "RESOURCE_NOT_EXISTS", "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥")


# -- the app -----------------------------------------------------------------------------------

def create_pay_sandbox(config: SandboxConfig) -> web.Application:
    keys = config.keys
    sandbox = Sandbox(config, OrderBook(config.appid, keys.mchid, config.clock),
                      Dispatcher(keys, config.time_scale, config.wall),
                      pay_sign.load_public(keys.merchant_public_path.read_bytes()),
                      pay_sign.load_private(keys.platform_private_path.read_bytes()))
    app = web.Application(middlewares=[_v3], client_max_size=1 << 20)
    app[SANDBOX] = sandbox
    app.cleanup_ctx.append(_dispatcher_ctx)
    api = [("POST", "/v3/pay/transactions/jsapi", prepay_jsapi), ("POST", "/v3/pay/transactions/native", prepay_native),
           ("GET", "/v3/pay/transactions/out-trade-no/{no}", query_by_out_trade_no),
           ("GET", "/v3/pay/transactions/id/{tid}", query_by_transaction_id),
           ("POST", "/v3/pay/transactions/out-trade-no/{no}/close", close),
           ("POST", "/v3/refund/domestic/refunds", refund), ("GET", "/v3/refund/domestic/refunds/{no}", refund_query),
           ("GET", "/v3/certificates", certificates)]
    for method, path, handler in api:
        app.router.add_route(method, path, handler)
    add_control_routes(app)
    return app


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[SANDBOX].dispatcher
    await dispatcher.start()
    yield
    await dispatcher.stop()
