"""Durable jobs for template messages: one notification (review result), and broadcast senders.

Registered on gradbot's broker by ``bot.jobs.build_broker`` (``register``). Worker resources are
opened lazily in the worker's startup event (the database engine connects on first use), so a
worker that never sends a template message never touches SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Annotated, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqEvents, TaskiqState

from bot.config import Settings
from bot.metrics import Metrics
from bot.privacy import mask_openid
from bot.services.notify.limiter import RateLimiter, seconds_to_china_midnight
from bot.services.notify.runner import Runner, new_token
from bot.services.notify.sender import SendResult, backoff, send_template
from bot.services.notify.slots import Slots
from bot.services.notify.templates import TemplateConfig, load_templates
from bot.services.notify.tokens import LocalTokenCache
from bot.wechat.api import WeChatAPI
from storage.keys import KeyBuilder
from storage.sql import notifications, students
from storage.sql.base import utcnow
from storage.sql.db import Database
from storage.sql.notifications import Notification
from storage.tokens import RedisTokenCache

if TYPE_CHECKING:
    from bot.jobs import Outbox

log = logging.getLogger("bot.notify")

SEND_NOTIFICATION = "gradbot.send_notification"
BROADCAST_SEND = "gradbot.broadcast_send"
JOB_TIMEOUT_S = 200
ROW_WAIT_S = 30.0  # the job may be queued just before the row's transaction commits
NOTIFY_ATTEMPTS = 6
REQUEUE_MARK_S = 120  # how long a "queued" mark keeps the ticker from queueing a pending notification again


@dataclass
class NotifyWorker:
    """What the template jobs need in a worker process."""

    settings: Settings
    api: WeChatAPI
    redis: aioredis.Redis
    keys: KeyBuilder
    metrics: Metrics
    broker: AsyncBroker
    poll: float = 0.2

    @cached_property
    def sender_api(self) -> WeChatAPI:
        """The worker's client, with the token remembered in the process between sends (tokens.py)."""
        shared = RedisTokenCache(self.redis, self.keys)
        return WeChatAPI(self.api.http, self.settings, LocalTokenCache(shared), self.metrics)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.sql_url)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis, self.keys)

    @cached_property
    def templates(self) -> TemplateConfig:
        return load_templates(self.settings.notify_templates)

    @cached_property
    def runner(self) -> Runner:
        return Runner(self.sender_api, self.db, self.limiter, Slots(self.redis, self.keys), self.templates,
                      self.metrics, partial(kick_sender, self.broker), daily_limit=self.settings.broadcast_daily_limit,
                      lease=timedelta(seconds=self.settings.broadcast_lease_s))

    async def close(self) -> None:
        if "db" in self.__dict__:
            await self.db.dispose()


# -- the jobs ----------------------------------------------------------------------------------

async def send_notification(client_msg_id: str, context: Annotated[Context, TaskiqDepends()]) -> str:
    worker: NotifyWorker = context.state.notify
    return await deliver_notification(worker, client_msg_id)


async def broadcast_send(broadcast_id: int, slot: int, token: str, seq: int,
                         context: Annotated[Context, TaskiqDepends()]) -> str:
    worker: NotifyWorker = context.state.notify
    return await worker.runner.run(broadcast_id, slot, token, seq)


async def deliver_notification(w: NotifyWorker, client_msg_id: str) -> str:
    """Send one recorded notification unless it went out already; returns what happened."""
    row = await _wait_row(w, client_msg_id)
    if row is None:
        log.warning("notification %s never committed; nothing sent", client_msg_id)
        return "missing"
    if row.state != "pending":
        return row.state
    if await w.limiter.paused_for() > 0:
        return "paused"  # stays pending; the ticker queues it again once the quota is back
    try:
        result = await _send_with_retries(w, row)
        return await _record(w, row, result)
    finally:  # done, or paused and pending again: the ticker may queue it once it is due
        with contextlib.suppress(RedisError, OSError):
            await w.redis.delete(w.keys.notify_requeued(row.client_msg_id))


async def _wait_row(w: NotifyWorker, client_msg_id: str) -> Notification | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROW_WAIT_S
    while True:
        async with w.db.read() as conn:
            row = await notifications.by_client_msg_id(conn, client_msg_id)
        if row is not None or loop.time() >= deadline:
            return row
        await asyncio.sleep(w.poll)


async def _send_with_retries(w: NotifyWorker, row: Notification) -> SendResult:
    while True:
        # While this job is trying, the row stays pending: tell the ticker it is queued (the mark
        # outlives the longest wait between tries), or it would start a second delivery beside this one.
        with contextlib.suppress(RedisError, OSError):  # only spares duplicate work; WeChat dedups client_msg_id
            await w.redis.set(w.keys.notify_requeued(row.client_msg_id), b"1", ex=REQUEUE_MARK_S)
        async with w.db.begin() as conn:
            attempt = await notifications.attempt(conn, row.id)
        result = await send_template(w.sender_api, row.openid, row.template_id, row.data, row.url, row.client_msg_id)
        if result.outcome != "retry" or attempt >= NOTIFY_ATTEMPTS:
            return result
        await asyncio.sleep(backoff(attempt))


async def _record(w: NotifyWorker, row: Notification, result: SendResult) -> str:
    w.metrics.notifications.labels(kind="template", outcome=result.outcome).inc()
    if result.outcome == "quota":
        await w.limiter.pause(seconds_to_china_midnight(utcnow()), "quota")
        return "paused"
    async with w.db.begin() as conn:
        if result.outcome == "sent":
            await notifications.mark_sent(conn, row.id, int(result.msgid or 0))
            return "sent"
        if result.outcome == "unfollowed":
            await students.unfollow(conn, row.openid)
        detail = f"field {result.detail}" if result.outcome == "bad_field" else (result.detail or result.outcome)
        await notifications.mark_failed(conn, row.id, result.errcode, detail)
    log.warning("notification %s for %s failed: %s", row.client_msg_id, mask_openid(row.openid), result.outcome)
    return result.outcome


# -- enqueueing --------------------------------------------------------------------------------

async def kick_notification(broker: AsyncBroker, client_msg_id: str) -> None:
    task = broker.find_task(SEND_NOTIFICATION)
    assert task is not None
    await task.kiq(client_msg_id=client_msg_id)


async def kick_sender(broker: AsyncBroker, broadcast_id: int, slot: int, token: str, seq: int) -> None:
    task = broker.find_task(BROADCAST_SEND)
    assert task is not None
    await task.kiq(broadcast_id=broadcast_id, slot=slot, token=token, seq=seq)


async def start_senders(broker: AsyncBroker, broadcast_id: int, senders: int) -> None:
    """Queue one sender per slot (fresh tokens); a slot that already has a live sender keeps it."""
    for slot in range(senders):
        await kick_sender(broker, broadcast_id, slot, new_token(), 0)


# -- registration ------------------------------------------------------------------------------

def register(broker: AsyncBroker, settings: Settings) -> None:
    broker.register_task(send_notification, task_name=SEND_NOTIFICATION, timeout=JOB_TIMEOUT_S)
    broker.register_task(broadcast_send, task_name=BROADCAST_SEND, timeout=JOB_TIMEOUT_S)
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, partial(_open, settings, broker))
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close)


async def _open(settings: Settings, broker: AsyncBroker, state: TaskiqState) -> None:
    outbox: Outbox = state.outbox
    state.notify = NotifyWorker(settings, outbox.api, outbox.redis, outbox.keys, outbox.metrics, broker)


async def _close(state: TaskiqState) -> Any:
    worker: NotifyWorker | None = getattr(state, "notify", None)
    if worker is not None:
        await worker.close()
