"""The pay sandbox's routes that are not WeChat's (under ``/__sandbox/``): the payer's side (cashier
hook, cashier page for people, the JSAPI bridge) and the switches tests and demos use to inject
duplicates, reordering, probes and forgeries. docs/payments.md lists them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.sandbox import pay_sign
from bot.sandbox.pay_context import Handler, Sandbox, dumps, notify_paid, read_json, sandbox_of
from bot.sandbox.pay_notify import FORGERIES, Notification
from bot.sandbox.pay_state import SandboxError, rfc3339
from bot.web.pay_templates import html_environment


def _cashier(sandbox: Sandbox, prepay: str, outcome: str, payer: str = "") -> dict[str, Any]:
    if outcome not in ("success", "cancel", "fail"):
        raise SandboxError(400, "PARAM_ERROR", "outcome 只能是 success、cancel 或 fail")
    order, _ = sandbox.book.by_prepay(prepay)
    if outcome == "success":
        sandbox.book.pay(prepay, payer)
        notify_paid(sandbox, order.out_trade_no)
    return {"outcome": outcome, "out_trade_no": order.out_trade_no, "trade_state": order.state,
            "err_msg": f"get_brand_wcpay_request:{'ok' if outcome == 'success' else outcome}"}


def _control(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = web.json_response({"code": exc.code, "message": exc.message}, status=exc.status,
                                         dumps=dumps)
        response.headers["Access-Control-Allow-Origin"] = "*"  # the bridge is called from gradbot's page
        return response
    return wrapped


async def cashier_hook(request: web.Request) -> web.Response:
    body = await read_json(request)
    result = _cashier(sandbox_of(request), request.match_info["prepay"], str(body.get("outcome", "success")),
                      str(body.get("openid", "")))
    return web.json_response(result, dumps=dumps)


async def jsapi_bridge(request: web.Request) -> web.Response:
    """What ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` does: check paySign, then pay."""
    sandbox, params = sandbox_of(request), await read_json(request)
    fields = [str(params.get(k, "")) for k in ("appId", "timeStamp", "nonceStr", "package")]
    signed = pay_sign.verify(sandbox.merchant_key, "\n".join(fields) + "\n", str(params.get("paySign", "")))
    if fields[0] != sandbox.config.appid or params.get("signType") != "RSA" or not signed:
        raise SandboxError(400, "SIGN_ERROR", "支付验证签名失败")
    prepay = fields[3].removeprefix("prepay_id=")
    result = _cashier(sandbox, prepay, str(params.get("outcome", "success")), "")
    return web.json_response(result, dumps=dumps)


async def cashier_page(request: web.Request) -> web.Response:
    sandbox, prepay = sandbox_of(request), request.match_info["prepay"]
    order, expires = sandbox.book.by_prepay(prepay)
    html = html_environment().get_template("pay/sandbox_cashier.html.j2").render(
        prepay=prepay, description=order.params["description"], amount_fen=order.total, state=order.state,
        expires=rfc3339(expires), result=request.query.get("result", ""))
    return web.Response(text=html, content_type="text/html")


async def cashier_form(request: web.Request) -> web.Response:
    form = await request.post()
    outcome = str(form.get("outcome", "success"))
    _cashier(sandbox_of(request), request.match_info["prepay"], outcome)
    raise web.HTTPSeeOther(f"/__sandbox/cashier/{request.match_info['prepay']}?result={outcome}")


async def bridge_js(request: web.Request) -> web.Response:
    script = html_environment().get_template("pay/sandbox_bridge.js.j2").render()
    return web.Response(text=script, content_type="application/javascript")


# -- test switches -----------------------------------------------------------------------------

async def order_state(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    order = sandbox.book.get(request.match_info["no"], sandbox.config.keys.mchid)
    return web.json_response({**sandbox.book.transaction(order), "prepay_ids": list(order.prepays),
                              "refunded": order.refunded}, dumps=dumps)


async def notifications(request: web.Request) -> web.Response:
    attempts = [a.__dict__ for a in sandbox_of(request).dispatcher.attempts]
    return web.json_response(attempts, dumps=dumps)


async def refunds(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    return web.json_response([sandbox.book.refund_body(r) for r in sandbox.book.refunds.values()], dumps=dumps)


async def switches(request: web.Request) -> web.Response:
    body, dispatcher = await read_json(request), sandbox_of(request).dispatcher
    if "duplicates" in body:
        dispatcher.switches.duplicates = max(0, int(body["duplicates"]))
    if "hold" in body:
        dispatcher.switches.hold = bool(body["hold"])
    return web.json_response({"duplicates": dispatcher.switches.duplicates, "hold": dispatcher.switches.hold})


async def release(request: web.Request) -> web.Response:
    order = str((await read_json(request)).get("order", "reverse"))
    return web.json_response({"released": sandbox_of(request).dispatcher.release(order)})


async def inject(request: web.Request) -> web.Response:
    """Send one forged (or replayed) notification about a paid order now; answer with the merchant's status."""
    sandbox, body = sandbox_of(request), await read_json(request)
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


def add_control_routes(app: web.Application) -> None:
    control = [("POST", "pay/{prepay}", cashier_hook), ("POST", "jsapi", jsapi_bridge),
               ("GET", "cashier/{prepay}", cashier_page), ("POST", "cashier/{prepay}", cashier_form),
               ("GET", "bridge.js", bridge_js), ("GET", "orders/{no}", order_state),
               ("GET", "notifications", notifications), ("GET", "refunds", refunds),
               ("POST", "switches", switches), ("POST", "release", release), ("POST", "inject", inject)]
    for method, path, handler in control:
        app.router.add_route(method, "/__sandbox/" + path, _control(handler))
