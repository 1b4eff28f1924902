"""Reconciliation: ask WeChat Pay about orders still unpaid after a few minutes, close expired ones.

A notification can be lost (WeChat Pay promises no delivery); the order query is the fallback
(reference §1.3-§1.4). Every step is idempotent, so several web workers running it at once only
cost extra queries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.services.payments.errors import PaymentError
from bot.services.payments.service import Payments
from storage.sql import orders as repo

log = logging.getLogger("bot.payments")

QUERY_AFTER = 5 * 60.0
INTERVAL = 60.0


@dataclass
class Reconciler:
    payments: Payments
    on_paid: Callable[[repo.Order], Awaitable[None]]
    query_after: float = QUERY_AFTER
    batch: int = 100

    async def run_once(self) -> dict[str, int]:
        """One pass; returns how many orders became paid, were closed, or stayed open."""
        cutoff = self.payments.now_utc() - timedelta(seconds=self.query_after)
        async with self.payments.db.read() as conn:
            pending = await repo.open_before(conn, cutoff, self.batch)
        counts = {"paid": 0, "closed": 0, "open": 0, "failed": 0}
        for order in pending:
            counts[await self._one(order)] += 1
        return counts

    async def _one(self, order: repo.Order) -> str:
        try:
            applied = await self.payments.sync(order)
        except PaymentError as exc:
            log.warning("reconciliation of %s failed: %s", order.out_trade_no, exc.code)
            return "failed"
        if applied.order.state == "paid":
            await self.on_paid(applied.order)
            return "paid"
        return "closed" if applied.order.state == "closed" else "open"

    async def loop(self, interval: float = INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end reconciliation for good
                log.exception("reconciliation pass failed")
