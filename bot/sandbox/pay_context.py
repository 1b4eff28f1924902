"""What the pay sandbox's routes share: its configuration, its state, and small helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.pay_keys import SandboxKeys
from bot.sandbox.pay_notify import Dispatcher, Notification
from bot.sandbox.pay_state import OrderBook, Refund, SandboxError

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


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError:
        raise SandboxError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise SandboxError(400, "PARAM_ERROR", "请求体必须是 JSON 对象")
    return data


def notify_paid(sandbox: Sandbox, out_trade_no: str) -> Notification:
    order = sandbox.book.orders[out_trade_no]
    notification = sandbox.dispatcher.build(order.params["notify_url"], "TRANSACTION.SUCCESS", "transaction",
                                            sandbox.book.transaction(order), "支付成功")
    sandbox.dispatcher.submit(notification)
    return notification


def notify_refund(sandbox: Sandbox, url: str, created: Refund) -> None:
    body = sandbox.book.refund_body(created)
    resource = {"mchid": sandbox.config.keys.mchid, "refund_status": body["status"],
                **{k: body[k] for k in ("out_trade_no", "transaction_id", "out_refund_no", "refund_id",
                                        "success_time", "user_received_account")},
                "amount": {k: body["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")}}
    sandbox.dispatcher.submit(sandbox.dispatcher.build(url, "REFUND.SUCCESS", "refund", resource, "退款成功"))
