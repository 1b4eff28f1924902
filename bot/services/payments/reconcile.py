"""Reconciliation: ask WeChat Pay about orders still unpaid after a few minutes, close expired ones.

A notification can be lost (WeChat Pay promises no delivery); the order query is the fallback
(reference §1.3-§1.4). Every web worker runs the loop, but with a :class:`~storage.lease.Lease` only
the process that takes the round's lease (SET NX PX, ``interval`` long, renewed while the pass runs)
queries: one pass per interval across all processes and machines, and when the holder dies its
lease expires and another worker takes the next round. Every step stays idempotent, so a pass run
twice (a lost lease, Redis unreachable: then each worker runs its own pass) only costs extra queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError

from bot.services.payments.errors import PaymentError
from bot.services.payments.service import Payments
from storage.lease import Lease
from storage.sql import orders as repo

log = logging.getLogger("bot.payments")

QUERY_AFTER = 5 * 60.0
EVERY_PASS_UNTIL = 30 * 60.0  # then hourly: an abandoned order must not cost a query a minute for a day
INTERVAL = 60.0


@dataclass
class Reconciler:
    payments: Payments
    on_paid: Callable[[repo.Order], Awaitable[None]]
    query_after: float = QUERY_AFTER
    interval: float = INTERVAL
    batch: int = 1000
    lease: Lease | None = None  # shared by every process (ttl = interval); None: this process alone
    stopping: bool = False  # set before cancelling the loop: redis-py can swallow a cancellation

    async def run_round(self) -> dict[str, int] | None:
        """This interval's pass if this process takes the lease; None when another process has it."""
        if self.lease is None:
            return await self.run_once()
        try:
            held = await self.lease.acquire()
        except RedisError as exc:  # idempotent: better a pass per worker than none at all
            log.warning("reconciliation lease unavailable (%s): this worker runs the pass itself",
                        type(exc).__name__)
            return await self.run_once()
        if not held:
            return None
        keeper = asyncio.create_task(self._keep(self.lease), name="reconcile-lease")
        try:
            return await self.run_once()
        finally:  # the lease is not released: it marks this interval's pass as taken until it expires
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, lease: Lease) -> None:
        """Renew the lease while a long pass runs, so no other process starts the next one meanwhile."""
        while True:
            await asyncio.sleep(lease.ttl / 3)
            try:
                if not await lease.renew():
                    log.warning("reconciliation lease lost during a pass; another worker may run one too")
                    return
            except RedisError as exc:
                log.warning("reconciliation lease not renewed (%s)", type(exc).__name__)

    async def run_once(self) -> dict[str, int]:
        """One pass; returns how many orders became paid, were closed, or stayed open."""
        cutoff = self.payments.now_utc() - timedelta(seconds=self.query_after)
        async with self.payments.db.read() as conn:
            pending = await repo.open_before(conn, cutoff, self.batch)
        counts = {"paid": 0, "closed": 0, "open": 0, "failed": 0}
        for order in pending:
            counts[await self._one(order) if self._due(order) else "open"] += 1
        return counts

    def _due(self, order: repo.Order) -> bool:
        """Ask WeChat Pay each pass while a payment is likely, hourly after, and once it expired."""
        age = (self.payments.now_utc() - order.created_at).total_seconds()
        if self.payments.expired(order):
            return True
        if not (order.prepay_id or order.code_url):
            return False  # never reached WeChat Pay: nothing to ask until it expires
        return age <= EVERY_PASS_UNTIL or age % 3600 < self.interval

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

    async def loop(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.interval)
            try:
                await self.run_round()
            except Exception:  # a database hiccup must not end reconciliation for good
                log.exception("reconciliation pass failed")
