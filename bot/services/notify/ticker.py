"""The ticker: every couple of seconds, start what is due, from the durable record in SQL.

Jobs never wait for a future time. Instead each web process runs this loop (started with the
console): a scheduled broadcast whose time has come, a sending broadcast whose slot has no live
sender (its worker died), a broadcast paused by the quota once the quota is back, and a notification
still pending after a minute (its job was lost, or the quota paused it) get jobs queued again. Guards
in Redis make several web processes queue each thing once; a duplicate would be harmless anyway
(slots admit one sender, sends carry the same ``client_msg_id``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from taskiq import AsyncBroker

from bot.services.notify.jobs import REQUEUE_MARK_S, kick_notification, kick_sender
from bot.services.notify.limiter import RateLimiter
from bot.services.notify.runner import QUOTA, new_token
from bot.services.notify.slots import Slots
from storage.keys import KeyBuilder
from storage.sql import broadcasts, notifications
from storage.sql.base import utcnow
from storage.sql.db import Database

log = logging.getLogger("bot.notify")


@dataclass
class Ticker:
    db: Database
    redis: aioredis.Redis
    keys: KeyBuilder
    broker: AsyncBroker
    senders: int
    every: float = 2.0
    stale: timedelta = timedelta(minutes=1)
    stopping: bool = False  # set by stop()

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self.tick()
            except (SQLAlchemyError, RedisError, OSError) as exc:  # keep ticking; say why this tick failed
                log.warning("ticker: %s", exc)
            if not self.stopping:
                await asyncio.sleep(self.every)

    def stop(self) -> None:
        """Cancel the task too. This ends the loop even when a library call swallowed that cancellation
        (seen with redis-py): without it, shutdown would wait for the ticker forever."""
        self.stopping = True

    async def tick(self) -> int:
        """Queue what is due; returns how many jobs were queued."""
        if await RateLimiter(self.redis, self.keys).paused_for() > 0:
            return 0
        now = utcnow()
        async with self.db.read() as conn:
            due = await broadcasts.due(conn, now, QUOTA)
            waiting = await notifications.stale_pending(conn, now - self.stale)
        return await self._senders(due) + await self._notifications(waiting)

    async def _senders(self, due: list[int]) -> int:
        slots, kicked = Slots(self.redis, self.keys), 0
        for broadcast_id in due:
            for slot in range(self.senders):
                if await slots.vacant(broadcast_id, slot) and await slots.once(broadcast_id, slot, "tick", 5):
                    await kick_sender(self.broker, broadcast_id, slot, new_token(), 0)
                    kicked += 1
        return kicked

    async def _notifications(self, waiting: list[str]) -> int:
        kicked = 0
        for client_msg_id in waiting:
            if await self.redis.set(self.keys.notify_requeued(client_msg_id), b"1", nx=True, ex=REQUEUE_MARK_S):
                await kick_notification(self.broker, client_msg_id)
                kicked += 1
        return kicked
