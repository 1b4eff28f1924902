"""A local stand-in for WeChat Pay API v3 (``gradbot pay-sandbox``), used by tests and the demo.

WeChat Pay has no v3 sandbox (reference/pay-notify-identity.md §1.6), so this one follows the wire
protocol closely enough for the real SDK (wechatpayv3) to talk to it: it verifies the merchant's
``Authorization`` signature and ±5-minute timestamp (401 SIGN_ERROR otherwise), signs every response
with its platform key in public-key mode (including empty 204s), and enforces the order rules in
:mod:`bot.sandbox.pay_state`. ``/__sandbox/…`` routes are not WeChat's: a cashier for people and
tests, the JSAPI bridge a browser page can call instead of ``WeixinJSBridge``, and switches that
inject duplicates, reordering, probes and forgeries. docs/payments.md lists them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox import pay_sign
from bot.sandbox.pay_keys import SandboxKeys
from bot.sandbox.pay_notify import FORGERIES, Dispatcher, Notification
from bot.sandbox.pay_state import OrderBook, Refund, SandboxError, rfc3339
from bot.web.pay_templates import html_environment

AUTH_WINDOW = 300
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SandboxConfig:
    keys: SandboxKeys
    appid: str
    clock: Callable[[], float] = time.time  # business time: expiry of orders and prepay ids
    wall: Callable[[], float] = time.time  # signature timestamps, as both sides' real clocks read
    time_scale: float = 1.0  # multiplies the notification retry schedule


@dataclass
class Sandbox:
    config: SandboxConfig
    book: OrderBook
    dispatcher: Dispatcher
    merchant_key: Any  # RSAPublicKey
    platform_key: Any  # RSAPrivateKey


SANDBOX = web.AppKey("pay_sandbox", Sandbox)


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


# -- signing and authentication ----------------------------------------------------------------

def _signed(sandbox: Sandbox, status: int, data: Any = None) -> web.Response:
    body = "" if data is None else _dumps(data)
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
    sandbox = _sandbox(request)
    try:
        _check_authorization(sandbox, request, (await request.read()).decode("utf-8", "replace"))
        return await handler(request)
    except SandboxError as exc:
        return _signed(sandbox, exc.status, {"code": exc.code, "message": exc.message})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError:
        raise SandboxError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise SandboxError(400, "PARAM_ERROR", "请求体必须是 JSON 对象")
    return data


# -- WeChat Pay API v3 -------------------------------------------------------------------------

async def prepay_jsapi(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    order = sandbox.book.place("JSAPI", await _json(request))
    return _signed(sandbox, 200, {"prepay_id": next(reversed(order.prepays))})


async def prepay_native(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    order = sandbox.book.place("NATIVE", await _json(request))
    return _signed(sandbox, 200, {"code_url": order.code_url})


async def query_by_out_trade_no(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    order = sandbox.book.get(request.match_info["no"], request.query.get("mchid"))
    return _signed(sandbox, 200, sandbox.book.transaction(order))


async def query_by_transaction_id(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    order = sandbox.book.by_transaction(request.match_info["tid"], request.query.get("mchid"))
    return _signed(sandbox, 200, sandbox.book.transaction(order))


async def close(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    sandbox.book.close(request.match_info["no"], (await _json(request)).get("mchid"))
    return _signed(sandbox, 204)


async def refund(request: web.Request) -> web.Response:
    sandbox, body = _sandbox(request), await _json(request)
    known = str(body.get("out_refund_no", "")) in sandbox.book.refunds
    created = sandbox.book.refund(body)
    if not known and body.get("notify_url"):
        _notify_refund(sandbox, str(body["notify_url"]), created)
    return _signed(sandbox, 200, sandbox.book.refund_body(created))


async def refund_query(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    return _signed(sandbox, 200, sandbox.book.refund_body(sandbox.book.refund_of(request.match_info["no"])))


async def certificates(request: web.Request) -> web.Response:
    raise SandboxError(404, "RESOURCE_NOT_EXISTS", "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥")


def _notify_paid(sandbox: Sandbox, out_trade_no: str) -> Notification:
    order = sandbox.book.orders[out_trade_no]
    notification = sandbox.dispatcher.build(order.params["notify_url"], "TRANSACTION.SUCCESS", "transaction",
                                            sandbox.book.transaction(order), "支付成功")
    sandbox.dispatcher.submit(notification)
    return notification


def _notify_refund(sandbox: Sandbox, url: str, created: Refund) -> None:
    body = sandbox.book.refund_body(created)
    resource = {"mchid": sandbox.config.keys.mchid, "refund_status": body["status"],
                **{k: body[k] for k in ("out_trade_no", "transaction_id", "out_refund_no", "refund_id",
                                        "success_time", "user_received_account")},
                "amount": {k: body["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")}}
    sandbox.dispatcher.submit(sandbox.dispatcher.build(url, "REFUND.SUCCESS", "refund", resource, "退款成功"))


# -- the payer's side (not WeChat's API) -------------------------------------------------------

def _cashier(sandbox: Sandbox, prepay: str, outcome: str, payer: str = "") -> dict[str, Any]:
    if outcome not in ("success", "cancel", "fail"):
        raise SandboxError(400, "PARAM_ERROR", "outcome 只能是 success、cancel 或 fail")
    order, _ = sandbox.book.by_prepay(prepay)
    if outcome == "success":
        sandbox.book.pay(prepay, payer)
        _notify_paid(sandbox, order.out_trade_no)
    return {"outcome": outcome, "out_trade_no": order.out_trade_no, "trade_state": order.state,
            "err_msg": f"get_brand_wcpay_request:{'ok' if outcome == 'success' else outcome}"}


def _control(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = web.json_response({"code": exc.code, "message": exc.message}, status=exc.status,
                                         dumps=_dumps)
        response.headers["Access-Control-Allow-Origin"] = "*"  # the bridge is called from gradbot's page
        return response
    return wrapped


async def cashier_hook(request: web.Request) -> web.Response:
    body = await _json(request)
    result = _cashier(_sandbox(request), request.match_info["prepay"], str(body.get("outcome", "success")),
                      str(body.get("openid", "")))
    return web.json_response(result, dumps=_dumps)


async def jsapi_bridge(request: web.Request) -> web.Response:
    """What ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` does: check paySign, then pay."""
    sandbox, params = _sandbox(request), await _json(request)
    fields = [str(params.get(k, "")) for k in ("appId", "timeStamp", "nonceStr", "package")]
    signed = pay_sign.verify(sandbox.merchant_key, "\n".join(fields) + "\n", str(params.get("paySign", "")))
    if fields[0] != sandbox.config.appid or params.get("signType") != "RSA" or not signed:
        raise SandboxError(400, "SIGN_ERROR", "支付验证签名失败")
    prepay = fields[3].removeprefix("prepay_id=")
    result = _cashier(sandbox, prepay, str(params.get("outcome", "success")), "")
    return web.json_response(result, dumps=_dumps)


async def cashier_page(request: web.Request) -> web.Response:
    sandbox, prepay = _sandbox(request), request.match_info["prepay"]
    order, expires = sandbox.book.by_prepay(prepay)
    html = html_environment().get_template("pay/sandbox_cashier.html.j2").render(
        prepay=prepay, description=order.params["description"], amount_fen=order.total, state=order.state,
        expires=rfc3339(expires), result=request.query.get("result", ""))
    return web.Response(text=html, content_type="text/html")


async def cashier_form(request: web.Request) -> web.Response:
    form = await request.post()
    outcome = str(form.get("outcome", "success"))
    _cashier(_sandbox(request), request.match_info["prepay"], outcome)
    raise web.HTTPSeeOther(f"/__sandbox/cashier/{request.match_info['prepay']}?result={outcome}")


async def bridge_js(request: web.Request) -> web.Response:
    script = html_environment().get_template("pay/sandbox_bridge.js.j2").render()
    return web.Response(text=script, content_type="application/javascript")


# -- test switches -----------------------------------------------------------------------------

async def order_state(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    order = sandbox.book.get(request.match_info["no"], sandbox.config.keys.mchid)
    return web.json_response({**sandbox.book.transaction(order), "prepay_ids": list(order.prepays),
                              "refunded": order.refunded}, dumps=_dumps)


async def notifications(request: web.Request) -> web.Response:
    attempts = [a.__dict__ for a in _sandbox(request).dispatcher.attempts]
    return web.json_response(attempts, dumps=_dumps)


async def refunds(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    return web.json_response([sandbox.book.refund_body(r) for r in sandbox.book.refunds.values()], dumps=_dumps)


async def switches(request: web.Request) -> web.Response:
    body, dispatcher = await _json(request), _sandbox(request).dispatcher
    if "duplicates" in body:
        dispatcher.switches.duplicates = max(0, int(body["duplicates"]))
    if "hold" in body:
        dispatcher.switches.hold = bool(body["hold"])
    return web.json_response({"duplicates": dispatcher.switches.duplicates, "hold": dispatcher.switches.hold})


async def release(request: web.Request) -> web.Response:
    order = str((await _json(request)).get("order", "reverse"))
    return web.json_response({"released": _sandbox(request).dispatcher.release(order)})


async def inject(request: web.Request) -> web.Response:
    """Send one forged (or replayed) notification about a paid order now; answer with the merchant's status."""
    sandbox, body = _sandbox(request), await _json(request)
    kind = str(body.get("kind", ""))
    genuine = _genuine(sandbox, str(body.get("out_trade_no", "")), body.get("url"))
    if kind == "replay":
        forged = Notification(genuine.url, genuine.body, genuine.headers, genuine.event_type,
                              genuine.out_trade_no, "replay")
    elif kind in FORGERIES:
        forged = sandbox.dispatcher.forge(kind, genuine, _wrong_amount(sandbox, genuine, body))
    else:
        raise SandboxError(400, "PARAM_ERROR", f"kind 只能是 replay 或 {', '.join(FORGERIES)}")
    return web.json_response({"status": await sandbox.dispatcher.send_once(forged)})


def _genuine(sandbox: Sandbox, out_trade_no: str, url: Any) -> Notification:
    order = sandbox.book.get(out_trade_no, sandbox.config.keys.mchid)
    if order.state not in ("SUCCESS", "REFUND"):
        raise SandboxError(400, "INVALID_REQUEST", "订单未支付：先在收银台支付")
    target = str(url) if url else order.params["notify_url"]
    for sent in reversed(sandbox.dispatcher.delivered):
        if sent.out_trade_no == out_trade_no and sent.event_type == "TRANSACTION.SUCCESS" and sent.url == target:
            return sent
    return sandbox.dispatcher.build(target, "TRANSACTION.SUCCESS", "transaction", sandbox.book.transaction(order),
                                    "支付成功")


def _wrong_amount(sandbox: Sandbox, genuine: Notification, body: dict[str, Any]) -> dict[str, Any]:
    order = sandbox.book.orders[genuine.out_trade_no]
    transaction = sandbox.book.transaction(order)
    amount = int(body.get("amount") or 1)
    transaction["amount"] = {**transaction["amount"], "total": amount, "payer_total": amount}
    return transaction


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
    control = [("POST", "pay/{prepay}", cashier_hook), ("POST", "jsapi", jsapi_bridge),
               ("GET", "cashier/{prepay}", cashier_page), ("POST", "cashier/{prepay}", cashier_form),
               ("GET", "bridge.js", bridge_js), ("GET", "orders/{no}", order_state),
               ("GET", "notifications", notifications), ("GET", "refunds", refunds),
               ("POST", "switches", switches), ("POST", "release", release), ("POST", "inject", inject)]
    for method, path, handler in control:
        app.router.add_route(method, "/__sandbox/" + path, _control(handler))
    return app


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[SANDBOX].dispatcher
    await dispatcher.start()
    yield
    await dispatcher.stop()
