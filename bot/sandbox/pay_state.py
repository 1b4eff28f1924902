"""The pay sandbox's order book: WeChat Pay v3's order, payment, close and refund rules, in memory.

Rules follow reference/pay-notify-identity.md §1: ``out_trade_no`` is unique per merchant for ever;
re-ordering with identical parameters returns a fresh ``prepay_id`` (2 h), with other parameters
``OUT_TRADE_NO_USED``; paid or closed orders cannot be re-ordered; an unpaid order past
``time_expire`` is closed; the same ``out_refund_no`` never refunds twice. Times come from the
injected clock (tests share theirs with gradbot), so expiry can be tested without waiting.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

PREPAY_TTL = 2 * 3600.0
DEFAULT_ORDER_TTL = 7 * 86400.0
CHINA = timezone(timedelta(hours=8))
_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
TRADE_STATE_DESC = {"NOTPAY": "未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭", "REFUND": "转入退款"}


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).isoformat(timespec="seconds")


def parse_rfc3339(value: Any) -> float:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise SandboxError(400, "PARAM_ERROR", "time_expire 格式错误") from None
    if parsed.tzinfo is None:
        raise SandboxError(400, "PARAM_ERROR", "time_expire 缺少时区")
    return parsed.timestamp()


@dataclass
class Order:
    out_trade_no: str
    trade_type: str  # JSAPI | NATIVE
    params: dict[str, Any]  # what was ordered: a re-order must match
    created: float
    expires: float
    state: str = "NOTPAY"
    prepays: dict[str, float] = field(default_factory=dict)  # prepay_id -> expires
    code_url: str = ""
    transaction_id: str = ""
    success_time: float = 0.0
    payer_openid: str = ""
    refunded: int = 0

    @property
    def total(self) -> int:
        return int(self.params["amount"]["total"])


@dataclass
class Refund:
    refund_id: str
    out_refund_no: str
    out_trade_no: str
    amount: int
    reason: str
    created: float
    status: str = "SUCCESS"


class OrderBook:
    def __init__(self, appid: str, mchid: str, clock: Callable[[], float]) -> None:
        self.appid, self.mchid, self.clock = appid, mchid, clock
        self.orders: dict[str, Order] = {}
        self.prepay_index: dict[str, str] = {}  # prepay_id or code_url token -> out_trade_no
        self.refunds: dict[str, Refund] = {}
        self._serial = itertools.count(1)

    # -- ordering ------------------------------------------------------------------------------

    def place(self, trade_type: str, body: Mapping[str, Any]) -> Order:
        params = self._validated(trade_type, body)
        now = self.clock()
        order = self.orders.get(params["out_trade_no"])
        if order is None:
            expires = parse_rfc3339(params["time_expire"]) if "time_expire" in params else now + DEFAULT_ORDER_TTL
            order = Order(params["out_trade_no"], trade_type, params, now, max(expires, now + 60))
            self.orders[order.out_trade_no] = order
        else:
            self._check_reorder(order, trade_type, params)
        return self._new_prepay(order, now)

    def _validated(self, trade_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if body.get("appid") != self.appid:
            raise SandboxError(400, "PARAM_ERROR", "appid和mch_id不匹配")
        if body.get("mchid") != self.mchid:
            raise SandboxError(400, "PARAM_ERROR", "mchid不存在或不匹配")
        if not _OUT_TRADE_NO.match(str(body.get("out_trade_no", ""))):
            raise SandboxError(400, "PARAM_ERROR", "out_trade_no 长度或字符不合法")
        description = body.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 127:
            raise SandboxError(400, "PARAM_ERROR", "description 长度不合法")
        if not str(body.get("notify_url", "")).startswith(("https://", "http://")):
            raise SandboxError(400, "PARAM_ERROR", "notify_url 格式错误")
        _check_amount(body.get("amount"))
        if trade_type == "JSAPI" and not isinstance((body.get("payer") or {}).get("openid"), str):
            raise SandboxError(400, "PARAM_ERROR", "JSAPI 下单缺少 payer.openid")
        keys = ("appid", "mchid", "out_trade_no", "description", "notify_url", "amount", "payer",
                "time_expire", "attach")
        return {k: body[k] for k in keys if k in body}

    def _check_reorder(self, order: Order, trade_type: str, params: dict[str, Any]) -> None:
        self.expire(order)
        if order.state == "SUCCESS" or order.state == "REFUND":
            raise SandboxError(400, "ORDERPAID", "该订单已支付")
        if order.state == "CLOSED":
            raise SandboxError(400, "ORDER_CLOSED", "订单已关闭")
        same = {k: v for k, v in params.items() if k != "notify_url"}
        before = {k: v for k, v in order.params.items() if k != "notify_url"}
        if trade_type != order.trade_type or same != before:
            raise SandboxError(403, "OUT_TRADE_NO_USED", "商户订单号重复")

    def _new_prepay(self, order: Order, now: float) -> Order:
        if order.trade_type == "NATIVE":
            token = secrets.token_urlsafe(12)
            order.code_url = f"weixin://wxpay/bizpayurl?pr={token}"
            order.prepays[token] = now + PREPAY_TTL
            self.prepay_index[token] = order.out_trade_no
            return order
        prepay_id = "wx" + datetime.fromtimestamp(now, CHINA).strftime("%d%H%M%S") + secrets.token_hex(12)
        order.prepays[prepay_id] = min(now + PREPAY_TTL, order.expires)
        self.prepay_index[prepay_id] = order.out_trade_no
        return order

    # -- lookups -------------------------------------------------------------------------------

    def get(self, out_trade_no: str, mchid: str | None) -> Order:
        if mchid != self.mchid:
            raise SandboxError(400, "PARAM_ERROR", "mchid 不匹配")
        order = self.orders.get(out_trade_no)
        if order is None:
            raise SandboxError(404, "ORDER_NOT_EXIST", "订单不存在")
        self.expire(order)
        return order

    def by_transaction(self, transaction_id: str, mchid: str | None) -> Order:
        for order in self.orders.values():
            if order.transaction_id and order.transaction_id == transaction_id:
                return self.get(order.out_trade_no, mchid)
        raise SandboxError(404, "ORDER_NOT_EXIST", "订单不存在")

    def by_prepay(self, prepay: str) -> tuple[Order, float]:
        out_trade_no = self.prepay_index.get(prepay)
        if out_trade_no is None:
            raise SandboxError(404, "PREPAY_NOT_EXIST", "预支付交易会话不存在")
        order = self.orders[out_trade_no]
        self.expire(order)
        return order, order.prepays[prepay]

    def expire(self, order: Order) -> None:
        if order.state == "NOTPAY" and self.clock() >= order.expires:
            order.state = "CLOSED"

    # -- the payer's side (the cashier) --------------------------------------------------------

    def pay(self, prepay: str, payer_openid: str = "") -> Order:
        order, prepay_expires = self.by_prepay(prepay)
        if order.state in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "ORDERPAID", "该订单已支付")
        if order.state == "CLOSED":
            raise SandboxError(400, "ORDER_CLOSED", "订单已关闭")
        if self.clock() >= prepay_expires:
            raise SandboxError(400, "PREPAY_EXPIRED", "支付会话已过期，请重新下单")
        order.state, order.success_time = "SUCCESS", self.clock()
        order.transaction_id = "4200" + f"{next(self._serial):06d}" + secrets.token_hex(9)[:18]
        jsapi_payer = (order.params.get("payer") or {}).get("openid", "")
        order.payer_openid = jsapi_payer or payer_openid or "oSandboxPayer_" + secrets.token_hex(6)
        return order

    # -- close and refund ----------------------------------------------------------------------

    def close(self, out_trade_no: str, mchid: str | None) -> None:
        order = self.get(out_trade_no, mchid)
        if order.state in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "ORDERPAID", "订单已支付，不能关闭")
        order.state = "CLOSED"

    def refund(self, body: Mapping[str, Any]) -> Refund:
        out_refund_no = str(body.get("out_refund_no", ""))
        if not _OUT_REFUND_NO.match(out_refund_no):
            raise SandboxError(400, "PARAM_ERROR", "out_refund_no 不合法")
        order = self._refund_target(body)
        amount = body.get("amount") or {}
        refund, total = amount.get("refund"), amount.get("total")
        if not isinstance(refund, int) or refund <= 0 or total != order.total or amount.get("currency") != "CNY":
            raise SandboxError(400, "PARAM_ERROR", "退款金额参数错误")
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if existing.out_trade_no != order.out_trade_no or existing.amount != refund:
                raise SandboxError(400, "INVALID_REQUEST", "同一退款单号的参数不一致")
            return existing
        if refund > order.total - order.refunded:
            raise SandboxError(403, "NOT_ENOUGH", "退款金额超过订单剩余可退金额")
        created = Refund("50" + secrets.token_hex(14), out_refund_no, order.out_trade_no, refund,
                         str(body.get("reason", "")), self.clock())
        self.refunds[out_refund_no] = created
        order.refunded += refund
        order.state = "REFUND"
        return created

    def _refund_target(self, body: Mapping[str, Any]) -> Order:
        if body.get("transaction_id"):
            order = self.by_transaction(str(body["transaction_id"]), self.mchid)
        else:
            order = self.get(str(body.get("out_trade_no", "")), self.mchid)
        if order.state not in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        return order

    def refund_of(self, out_refund_no: str) -> Refund:
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise SandboxError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return refund

    # -- wire shapes ---------------------------------------------------------------------------

    def transaction(self, order: Order) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type, "trade_state": order.state,
            "trade_state_desc": TRADE_STATE_DESC[order.state], "attach": order.params.get("attach", ""),
            "amount": {"total": order.total, "currency": "CNY"},
        }
        if order.transaction_id:
            body.update(transaction_id=order.transaction_id, bank_type="OTHERS",
                        success_time=rfc3339(order.success_time), payer={"openid": order.payer_openid})
            body["amount"].update(payer_total=order.total, payer_currency="CNY")
        return body

    def refund_body(self, refund: Refund) -> dict[str, Any]:
        order = self.orders[refund.out_trade_no]
        return {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": rfc3339(refund.created),
            "success_time": rfc3339(refund.created), "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {"total": order.total, "refund": refund.amount, "payer_total": order.total,
                       "payer_refund": refund.amount, "currency": "CNY"},
        }


def _check_amount(amount: Any) -> None:
    if not isinstance(amount, dict):
        raise SandboxError(400, "PARAM_ERROR", "缺少 amount")
    total = amount.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise SandboxError(400, "PARAM_ERROR", "amount.total 必须是正整数（分）")
    if amount.get("currency", "CNY") != "CNY":
        raise SandboxError(400, "PARAM_ERROR", "currency 只支持 CNY")


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
