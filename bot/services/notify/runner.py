"""The broadcast sender: one job works one *slot* of a broadcast for a bounded slice, then queues its
continuation. Several slots share the broadcast's rate (a token bucket in Redis). A broadcast that is
not due yet, or paused by the quota, ends the job; the ticker (ticker.py) starts senders again.

Per batch: claim rows in SQL (lease), take tokens, send with bounded concurrency, then record every
outcome in one transaction. What survives a killed worker: rows it had claimed but not recorded go
back to the pool when their lease ends and are sent again with the same ``client_msg_id``, which
WeChat (and the stand-in) deduplicate; the slot's Redis key lapses and the ticker starts a
replacement sender; the killed job itself is reclaimed by the queue and ends at once because its
slot has a new holder. docs/console.md explains the guarantees and their limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.metrics import Metrics
from bot.services.notify.broadcast import client_msg_id
from bot.services.notify.limiter import RateLimiter, seconds_to_china_midnight
from bot.services.notify.sender import SendResult, backoff, send_template
from bot.services.notify.slots import Slots
from bot.services.notify.templates import TemplateConfig, UnknownTemplate
from bot.wechat.api import WeChatAPI
from storage.sql import audit, broadcasts, stages, students
from storage.sql.base import utcnow
from storage.sql.broadcasts import Broadcast, Recipient
from storage.sql.db import Database
from storage.sql.stages import Audience

log = logging.getLogger("bot.notify")

SLICE_S = 15.0  # a sender job works this long, then queues its continuation
STOPS = frozenset({"finished", "not_due", "paused"})  # the job ends; the ticker restarts it when due
BATCH_SECONDS = 0.5  # one claim holds about this much sending at the broadcast's rate ...
MAX_BATCH = 500  # ... and never more rows than this
MAX_ATTEMPTS = 5  # tries per recipient for transient failures (-1, timeouts)
QUOTA = "quota"  # pause reason that lifts by itself when the quota resets

Kick = Callable[[int, int, str, int], Awaitable[None]]  # (broadcast_id, slot, token, seq)


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass
class Outcomes:
    sent: list[tuple[int, int]] = field(default_factory=list)
    failed: list[tuple[int, int]] = field(default_factory=list)
    retry: dict[int, tuple[int, int]] = field(default_factory=dict)  # row id -> (attempts, errcode)
    release: list[int] = field(default_factory=list)
    unfollowed: list[str] = field(default_factory=list)
    stop: str = ""

    def add(self, row: Recipient, result: SendResult) -> None:
        if result.outcome == "sent":
            self.sent.append((row.id, int(result.msgid or 0)))
        elif result.outcome in ("quota", "stop"):
            self.release.append(row.id)
            self.stop = self.stop or (QUOTA if result.outcome == "quota" else f"errcode {result.errcode}")
        elif result.outcome == "retry" and row.attempts + 1 < MAX_ATTEMPTS:
            self.retry[row.id] = (row.attempts + 1, result.errcode)
        else:
            self.failed.append((row.id, result.errcode))
            if result.outcome == "unfollowed":
                self.unfollowed.append(row.openid)


class TokenGate:
    """Local store of rate tokens, refilled from the shared bucket in small chunks (fewer Redis calls)."""

    def __init__(self, limiter: RateLimiter, name: str, rate: int, daily_limit: int) -> None:
        self.limiter, self.name, self.rate, self.daily_limit = limiter, name, rate, daily_limit
        self.chunk = max(1, rate // 20)
        self.tokens = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> bool:
        """One token (waiting for the rate); False when today's cap is used up."""
        async with self._lock:
            while self.tokens == 0:
                granted, wait = await self.limiter.take(self.name, self.rate, self.chunk)
                if granted == 0:
                    await asyncio.sleep(max(wait, 0.001))
                    continue
                allowed = await self.limiter.spend_day(granted, self.daily_limit, utcnow())
                if allowed == 0:
                    return False
                self.tokens += allowed
            self.tokens -= 1
            return True


@dataclass
class Runner:
    api: WeChatAPI
    db: Database
    limiter: RateLimiter
    slots: Slots
    templates: TemplateConfig
    metrics: Metrics
    kick: Kick
    concurrency: int = 32
    daily_limit: int = 90_000
    lease: timedelta = timedelta(seconds=30)  # a claimed batch stays with its sender this long
    poll: float = 0.5
    # One local token store per broadcast, kept across batches so no fetched token goes unused.
    gates: dict[int, TokenGate] = field(default_factory=dict)

    def gate(self, b: Broadcast) -> TokenGate:
        if b.id not in self.gates:
            self.gates[b.id] = TokenGate(self.limiter, f"bc{b.id}", b.rate, self.daily_limit)
        return self.gates[b.id]

    async def run(self, broadcast_id: int, slot: int, token: str, seq: int) -> str:
        """Work one slice; returns why it stopped (``continue`` means a continuation was queued)."""
        if not await self.slots.hold(broadcast_id, slot, token):
            return "slot_taken"
        outcome = await self._loop(broadcast_id, slot, token)
        if outcome == "continue" and await self.slots.once(broadcast_id, slot, f"seq{seq + 1}", 3600):
            await self.kick(broadcast_id, slot, token, seq + 1)
        elif outcome != "continue":
            await self.slots.drop(broadcast_id, slot, token)
        return outcome

    async def _loop(self, broadcast_id: int, slot: int, token: str) -> str:
        started = time.monotonic()
        while True:
            step = await self._step(broadcast_id, token)
            if step in STOPS:
                return step
            if not await self.slots.hold(broadcast_id, slot, token):
                return "slot_lost"
            if time.monotonic() - started >= SLICE_S:
                return "continue"

    async def _step(self, broadcast_id: int, token: str) -> str:
        """One step; a broadcast that is not due, or paused, ends the job (the ticker starts it again)."""
        async with self.db.read() as conn:
            b = await broadcasts.get(conn, broadcast_id)
        if b is None or b.state in ("done", "cancelled") or (b.state == "paused" and b.reason != QUOTA):
            return "finished"
        now = utcnow()
        if b.state == "scheduled":
            if b.send_at > now:
                return "not_due"
            await self._start(b, now)
            return "started"
        if await self.limiter.paused_for() > 0:
            await self._set(b.id, "paused", ("sending",), QUOTA)
            return "paused"
        if b.state == "paused":
            await self._set(b.id, "sending", ("paused",), None)
            return "resumed"
        return await self._batch(b, token, now)

    async def _start(self, b: Broadcast, now: datetime) -> None:
        """Flip to sending and write one row per recipient, in one transaction (one caller wins)."""
        async with self.db.begin() as conn:
            if not await broadcasts.begin_sending(conn, b.id, now):
                return
            openids = await stages.openids(conn, Audience.from_dict(b.audience))
            total = await broadcasts.add_recipients(conn, b.id, ((o, client_msg_id(b.id, o)) for o in openids))
            await audit.record(conn, actor="gradbot", action="broadcast.start", openid=None, at=now,
                               details={"broadcast_id": b.id, "total": total})
        log.info("broadcast %d started: %d recipients", b.id, total)

    async def _batch(self, b: Broadcast, token: str, now: datetime) -> str:
        size = max(10, min(MAX_BATCH, int(b.rate * BATCH_SECONDS)))
        async with self.db.begin() as conn:
            rows = await broadcasts.claim(conn, b.id, worker=token, limit=size, now=now, lease=self.lease)
            if not rows and not await broadcasts.has_pending(conn, b.id):
                await broadcasts.set_state(conn, b.id, "done", expected=("sending",))
                log.info("broadcast %d done", b.id)
                return "finished"
        if not rows:  # the rest is leased to other senders or waiting for a retry
            await asyncio.sleep(self.poll)
            return "idle"
        renewing = asyncio.create_task(self._renew(rows, token))  # cancelled right below
        try:
            outcomes = await self._send(b, rows)
        finally:
            renewing.cancel()
        await self._record(b, outcomes)
        return "sent"

    async def _renew(self, rows: list[Recipient], token: str) -> None:
        """While a batch is out, keep its lease from running out (a slow WeChat, a busy machine)."""
        ids = [r.id for r in rows]
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            async with self.db.begin() as conn:
                await broadcasts.renew(conn, ids, worker=token, until=utcnow() + self.lease)

    async def _send(self, b: Broadcast, rows: list[Recipient]) -> Outcomes:
        outcomes = Outcomes()
        try:
            spec = self.templates.get(b.template)
        except UnknownTemplate:
            outcomes.release = [r.id for r in rows]
            outcomes.stop = f"unknown template {b.template}"
            return outcomes
        data, url = spec.render(b.variables)
        gate = self.gate(b)
        pending: Iterator[Recipient] = iter(rows)

        async def worker() -> None:
            for row in pending:
                if outcomes.stop or not await gate.acquire():
                    outcomes.stop = outcomes.stop or QUOTA
                    outcomes.release.append(row.id)
                    continue
                result = await send_template(self.api, row.openid, spec.template_id, data, url, row.client_msg_id)
                outcomes.add(row, result)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(rows)))))
        return outcomes

    async def _record(self, b: Broadcast, out: Outcomes) -> None:
        now = utcnow()
        async with self.db.begin() as conn:
            await broadcasts.mark_sent(conn, out.sent, now)
            await broadcasts.mark_failed(conn, out.failed, now)
            for row_id, (attempts, errcode) in out.retry.items():
                await broadcasts.retry_later(conn, [row_id], now + timedelta(seconds=backoff(attempts)), errcode)
            await broadcasts.release(conn, out.release)
            for openid in out.unfollowed:
                await students.unfollow(conn, openid, now)
            if out.stop:
                await broadcasts.set_state(conn, b.id, "paused", expected=("sending",), reason=out.stop)
        if out.stop == QUOTA:
            await self.limiter.pause(seconds_to_china_midnight(now), "quota")
        self._count(out)

    def _count(self, out: Outcomes) -> None:
        counter = self.metrics.notifications
        for outcome, n in (("sent", len(out.sent)), ("failed", len(out.failed)), ("retry", len(out.retry)),
                           ("unfollowed", len(out.unfollowed))):
            if n:
                counter.labels(kind="broadcast", outcome=outcome).inc(n)

    async def _set(self, broadcast_id: int, state: str, expected: tuple[str, ...], reason: str | None) -> None:
        async with self.db.begin() as conn:
            await broadcasts.set_state(conn, broadcast_id, state, expected=expected, reason=reason)
