"""Orders: open one per (student, item), prepay it, apply what WeChat Pay says, close it (refunds.py refunds).

SQL is the truth (storage/sql/orders.py: compare-and-set transitions, each one written to
``order_events``). WeChat Pay is asked before anything is concluded from silence: an order is paid
when a verified notification or an order query says so, and an expired order is closed at WeChat
Pay before it is closed here (a close that answers "already paid" becomes a payment).
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bot.metrics import Metrics
from bot.privacy import mask_openid
from bot.services.payments.client import PayClient
from bot.services.payments.config import PayConfig
from bot.services.payments.errors import AlreadyPaid, NotificationRejected, PayApiError, PaymentError, WrongPayer
from bot.services.payments.fees import Fee, FeeTable, yuan
from bot.services.payments.links import LinkClaims, Sealer
from bot.services.payments.notify import Transaction
from dialogs.spec import Link
from storage.sql import orders as repo
from storage.sql.db import Database
from storage.sql.errors import OpenOrderExists, StaleOrderState

log = logging.getLogger("bot.payments")

ORDER_TTL = 24 * 3600.0  # time_expire of a new order; a later visit opens a new one
PREPAY_TTL = 2 * 3600.0  # prepay_id and code_url lifetime at WeChat Pay
PREPAY_MARGIN = 300.0  # renew a prepay id this long before it lapses
STATUS_QUERY_SPACING = 5.0  # seconds between order queries a polling page can cause
CHINA = timezone(timedelta(hours=8))
_NO_CHARS = string.digits + string.ascii_uppercase


def link_intent(data: Mapping[str, Any]) -> Link:
    """The pay link as a one-article news message (the text form is the ``pay/prompt`` template)."""
    return Link("pay/link_title", "pay/link_description", str(data["pay_url"]), variables=dict(data))


def new_out_trade_no(now: float) -> str:
    """``GB`` + date + 14 random characters of ``[0-9A-Z]``: 24 characters, unguessable, never reused."""
    day = datetime.fromtimestamp(now, CHINA).strftime("%Y%m%d")
    return "GB" + day + "".join(secrets.choice(_NO_CHARS) for _ in range(14))


@dataclass(frozen=True, slots=True)
class Applied:
    order: repo.Order
    changed: bool  # False for a duplicate, a replay, or a state WeChat reports that changes nothing


class Payments:
    def __init__(self, config: PayConfig, client: PayClient, db: Database, fees: FeeTable, sealer: Sealer,
                 metrics: Metrics, clock: Callable[[], float]) -> None:
        self.config, self.client, self.db, self.fees = config, client, db, fees
        self.sealer, self.metrics, self.clock = sealer, metrics, clock
        self._queried: dict[str, float] = {}  # out_trade_no -> when the page last made us ask WeChat Pay

    def _count(self, outcome: str) -> None:
        self.metrics.payments.labels(outcome=outcome).inc()

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- links ---------------------------------------------------------------------------------

    def link_url(self, claims: LinkClaims) -> str:
        self.fee(claims)  # refuse to send a link nobody could pay
        return f"{self.config.public_url}/pay/{self.sealer.link(claims, self.clock())}"

    def fee(self, claims: LinkClaims) -> Fee:
        return self.fees.find(claims.procedure, claims.item, claims.school)

    def dialog_data(self, claims: LinkClaims) -> dict[str, Any]:
        """What a dialog's pay state keeps in its data; the ``pay/prompt`` template shows it.

        ``pay_item`` also tells handlers/external.py which payment may advance that state.
        """
        fee = self.fee(claims)
        return {"pay_item": claims.item, "pay_url": self.link_url(claims), "pay_description": fee.description,
                "pay_amount_fen": fee.amount_fen, "pay_amount_yuan": yuan(fee.amount_fen)}

    # -- orders --------------------------------------------------------------------------------

    async def latest(self, claims: LinkClaims) -> repo.Order | None:
        async with self.db.read() as conn:
            return await repo.latest(conn, claims.openid, claims.item)

    async def open_order(self, claims: LinkClaims) -> repo.Order:
        """The student's open order for this item (the same one on every visit), else a new one."""
        fee = self.fee(claims)
        current = await self.latest(claims)
        if current is not None and current.state in ("paid", "refunded"):
            raise AlreadyPaid(current.out_trade_no)
        if current is not None and current.state == "created":
            if not self.expired(current):
                return current
            retired = await self.retire(current)
            if retired.order.state == "paid":
                raise AlreadyPaid(current.out_trade_no)
        return await self._create(claims, fee)

    async def _create(self, claims: LinkClaims, fee: Fee) -> repo.Order:
        new = repo.NewOrder(new_out_trade_no(self.clock()), claims.openid, claims.procedure, claims.item,
                            fee.amount_fen)
        async with self.db.begin() as conn:
            try:
                order = await repo.create(conn, new, source="pay_page", at=self.now_utc())
            except OpenOrderExists as exc:  # a concurrent visit created it first: use theirs
                existing = await repo.get(conn, exc.out_trade_no)
                assert existing is not None
                return existing
        self._count("order_created")
        log.info("order %s opened for %s (%s, %d fen)", new.out_trade_no, mask_openid(claims.openid),
                 claims.item, fee.amount_fen)
        return order

    def expires_at(self, order: repo.Order) -> datetime:
        return order.created_at + timedelta(seconds=ORDER_TTL)

    def expired(self, order: repo.Order) -> bool:
        return self.now_utc() >= self.expires_at(order) - timedelta(seconds=PREPAY_MARGIN)

    # -- prepay --------------------------------------------------------------------------------

    async def jsapi(self, claims: LinkClaims, payer_openid: str) -> dict[str, str]:
        """Parameters for ``getBrandWCPayRequest``, renewing the prepay id when it lapsed."""
        if payer_openid != claims.openid:
            raise WrongPayer("payer is not the student")
        order = await self._prepared(claims, "jsapi", payer_openid)
        assert order.prepay_id is not None
        return self.client.jsapi_params(order.prepay_id)

    async def native(self, claims: LinkClaims) -> tuple[repo.Order, str]:
        order = await self._prepared(claims, "native", "")
        assert order.code_url is not None
        return order, order.code_url

    async def _prepared(self, claims: LinkClaims, kind: str, payer: str) -> repo.Order:
        for _ in range(3):  # a closed or switched order is replaced by a new one, a bounded number of times
            order = await self.open_order(claims)
            other = order.code_url if kind == "jsapi" else order.prepay_id
            if other:  # prepaid for the other kind: WeChat Pay refuses the same number with other parameters
                await self.retire(order)
                continue
            if self._prepay_valid(order, kind):
                return order
            try:
                return await self._prepay(order, claims, kind, payer)
            except PayApiError as exc:
                if exc.code not in ("ORDER_CLOSED", "ORDERPAID", "OUT_TRADE_NO_USED"):
                    self._count("prepay_error")
                    raise
                if exc.code == "OUT_TRADE_NO_USED":  # the fee changed since this order was placed
                    await self.retire(order)
                else:
                    await self.sync(order)  # paid → AlreadyPaid on the next round; closed → a new order
        raise PaymentError("could not prepare an order", code="prepay_loop")

    def _prepay_valid(self, order: repo.Order, kind: str) -> bool:
        value = order.prepay_id if kind == "jsapi" else order.code_url
        expires = order.prepay_expires_at
        return bool(value) and expires is not None and expires - timedelta(seconds=PREPAY_MARGIN) > self.now_utc()

    async def _prepay(self, order: repo.Order, claims: LinkClaims, kind: str, payer: str) -> repo.Order:
        request = self._wechat_order(order, self.fee(claims))
        expires = min(self.now_utc() + timedelta(seconds=PREPAY_TTL), self.expires_at(order))
        if kind == "jsapi":
            fields: dict[str, Any] = {"prepay_id": await self.client.prepay_jsapi(request, payer)}
        else:
            fields = {"code_url": await self.client.prepay_native(request)}
        async with self.db.begin() as conn:
            updated = await repo.update_open(conn, order.out_trade_no, prepay_expires_at=expires, **fields)
        self._count("prepay_" + kind)
        return updated

    def _wechat_order(self, order: repo.Order, fee: Fee) -> dict[str, Any]:
        """Identical on every call for one order: WeChat Pay then hands out a fresh prepay id."""
        time_expire = self.expires_at(order).astimezone(CHINA).isoformat(timespec="seconds")
        return {"description": fee.description, "out_trade_no": order.out_trade_no,
                "amount": {"total": order.amount_fen, "currency": "CNY"}, "time_expire": time_expire,
                "attach": f"{order.procedure}:{order.item}"[:128]}

    # -- what WeChat Pay says ------------------------------------------------------------------

    async def apply(self, tx: Transaction, source: str) -> Applied:
        """Record a verified transaction report; idempotent under duplicates and concurrent deliveries."""
        async with self.db.begin() as conn:
            order = await repo.get(conn, tx.out_trade_no)
            if order is None:
                raise NotificationRejected("unknown_order", status=400)
            if tx.amount_fen != order.amount_fen or tx.currency != "CNY":
                self._count("amount_mismatch")
                log.error("order %s: WeChat Pay reports %d fen, the order is %d fen: not applied",
                          order.out_trade_no, tx.amount_fen, order.amount_fen)
                raise NotificationRejected("amount_mismatch", status=400)
            if tx.trade_state != "SUCCESS" or order.state in ("paid", "refunded"):
                return self._unchanged(order, tx)
            try:
                paid = await repo.transition(
                    conn, order.out_trade_no, expected=order.state, to_state="paid", source=source,
                    details={"transaction_id": tx.transaction_id, "success_time": tx.success_time},
                    at=self.now_utc(), transaction_id=tx.transaction_id, payer_openid=tx.payer_openid or None)
            except StaleOrderState:
                current = await repo.get(conn, order.out_trade_no)
                assert current is not None
                return self._unchanged(current, tx)
        self._count("paid")
        log.info("order %s paid (%s)", paid.out_trade_no, source)
        return Applied(paid, True)

    def _unchanged(self, order: repo.Order, tx: Transaction) -> Applied:
        if order.state in ("paid", "refunded") and order.transaction_id not in (None, tx.transaction_id):
            log.error("order %s: a second transaction %s reported", order.out_trade_no, tx.transaction_id)
        self._count("duplicate" if order.state in ("paid", "refunded") else "not_paid")
        return Applied(order, False)

    async def sync(self, order: repo.Order) -> Applied:
        """Ask WeChat Pay about an open order and act on the answer (reconciliation, the page's hint)."""
        found = await self.client.query(order.out_trade_no)
        state = str(found.get("trade_state", "")) if found else "NOT_EXIST"
        if found is not None and state in ("SUCCESS", "REFUND"):
            return await self.apply(_transaction(found), source="query")
        if state in ("CLOSED", "REVOKED") or (self.expired(order) and state in ("NOTPAY", "NOT_EXIST", "PAYERROR")):
            return await self.retire(order)
        return Applied(order, False)

    async def retire(self, order: repo.Order) -> Applied:
        """Close an open order at WeChat Pay, then here; a payment that slipped in wins."""
        try:
            await self.client.close_order(order.out_trade_no)
        except AlreadyPaid:
            return await self.sync_paid(order)
        async with self.db.begin() as conn:
            try:
                closed = await repo.transition(conn, order.out_trade_no, expected="created", to_state="closed",
                                               source="close", at=self.now_utc())
            except StaleOrderState:
                current = await repo.get(conn, order.out_trade_no)
                assert current is not None
                return Applied(current, False)
        self._count("closed")
        return Applied(closed, True)

    async def sync_paid(self, order: repo.Order) -> Applied:
        found = await self.client.query(order.out_trade_no)
        if found is None:
            raise PaymentError("WeChat Pay said paid but has no such order", code="inconsistent")
        return await self.apply(_transaction(found), source="query")

    async def status(self, claims: LinkClaims) -> str:
        """The order state the page shows; asks WeChat Pay when an open order may have been paid.

        At most one query per order every few seconds, however many pages poll.
        """
        order = await self.latest(claims)
        if order is None:
            return "none"
        if order.state == "created" and (order.prepay_id or order.code_url) and self._may_query(order):
            order = (await self.sync(order)).order
        return order.state

    def _may_query(self, order: repo.Order) -> bool:
        now = self.clock()
        if now - self._queried.get(order.out_trade_no, float("-inf")) < STATUS_QUERY_SPACING:
            return False
        if len(self._queried) > 10_000:
            self._queried.clear()
        self._queried[order.out_trade_no] = now
        return True


def _transaction(found: Mapping[str, Any]) -> Transaction:
    """A queried order as a transaction report (REFUND means it was paid, then refunded)."""
    amount = found.get("amount") or {}
    state = "SUCCESS" if found.get("trade_state") in ("SUCCESS", "REFUND") else str(found.get("trade_state"))
    return Transaction(str(found["out_trade_no"]), str(found.get("transaction_id", "")), state,
                       int(amount.get("total", 0)), str(amount.get("currency", "CNY")),
                       str((found.get("payer") or {}).get("openid", "")), str(found.get("success_time", "")))
