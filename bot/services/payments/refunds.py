"""Refunds by staff (``gradbot orders refund``; the console later): once per order, however often retried.

The refund number is derived from the order number, so a retry after a timeout or a crash between
WeChat Pay accepting the refund and our record of it gets the same refund back, never a second
one (reference §1.5: "the same out_refund_no never refunds twice"). One refund per order, whole
or partial; the order then moves ``paid → refunded`` with the details in ``order_events`` and an
``order_refund`` audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.services.payments.errors import PaymentError
from bot.services.payments.service import Payments
from storage.sql import audit
from storage.sql import orders as repo
from storage.sql.errors import StaleOrderState

REASON_LIMIT = 80  # WeChat Pay shows the reason to the payer; it accepts at most 80 characters


def refund_number(out_trade_no: str) -> str:
    return "RF" + out_trade_no


async def refund(payments: Payments, out_trade_no: str, amount_fen: int | None, reason: str,
                 actor: str) -> repo.Order:
    async with payments.db.read() as conn:
        order = await repo.get(conn, out_trade_no)
    if order is None:
        raise PaymentError(f"no order {out_trade_no}", code="order_not_found")
    if order.state == "refunded":
        return order
    if order.state != "paid":
        raise PaymentError(f"order {out_trade_no} is {order.state}, not paid", code="not_paid")
    amount = order.amount_fen if amount_fen is None else amount_fen
    if not 0 < amount <= order.amount_fen:
        raise PaymentError(f"refund must be 1..{order.amount_fen} fen", code="bad_amount")
    result = await payments.client.refund(out_refund_no=refund_number(out_trade_no), out_trade_no=out_trade_no,
                                          refund_fen=amount, total_fen=order.amount_fen,
                                          reason=reason[:REASON_LIMIT])
    return await _record(payments, order, amount, reason, actor, result)


async def _record(payments: Payments, order: repo.Order, amount: int, reason: str, actor: str,
                  result: Mapping[str, Any]) -> repo.Order:
    details = {"out_refund_no": refund_number(order.out_trade_no), "refund_id": result.get("refund_id"),
               "amount_fen": amount, "reason": reason, "status": result.get("status")}
    async with payments.db.begin() as conn:
        try:
            refunded = await repo.transition(conn, order.out_trade_no, expected="paid", to_state="refunded",
                                             source=actor, details=details, at=payments.now_utc())
        except StaleOrderState:  # a concurrent run recorded it first
            current = await repo.get(conn, order.out_trade_no)
            assert current is not None
            return current
        await audit.record(conn, actor=actor, action="order_refund", openid=order.openid, details=details,
                           at=payments.now_utc())
    payments.metrics.payments.labels(outcome="refunded").inc()
    return refunded
