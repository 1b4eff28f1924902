"""Durable background jobs: customer-service sends and late replies, on taskiq + Redis Streams.

A job is acked only after it ran, so a job whose worker was killed is claimed again by another worker
(bot/job_broker.py; docs/jobs.md). Re-running must not re-send: each message of a job is claimed in
Redis (``SET NX``) before it goes out and marked sent after, so a re-run skips what went out. The
web side enqueues through :class:`JobQueue`, which also refuses to queue the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import aiohttp
import redis.asyncio as aioredis
from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.receiver import Receiver

from bot.config import Settings
from bot.job_broker import GradbotStreamBroker
from bot.metrics import Metrics
from bot.privacy import mask_openid
from bot.render import Renderer
from bot.services.notify.jobs import register as register_notify_jobs
from bot.services.retention import register as register_retention
from bot.tasks import TaskSet
from bot.wechat import errors
from bot.wechat.api import WeChatAPI
from bot.wechat.replies import OutMessage, loads
from storage.base import SessionStore, in_flight
from storage.keys import KeyBuilder
from storage.tokens import RedisTokenCache

if TYPE_CHECKING:
    from bot.local_jobs import LocalJobQueue

log = logging.getLogger("bot.jobs")

SEND_CS = "gradbot.send_cs_messages"
LATE_REPLY = "gradbot.deliver_late_reply"
LATE_DEADLINE_S = 60.0  # how long a late reply may still be waited for before apologising
JOB_TIMEOUT_S = 240  # a job past this is cancelled (and acked): bounded work per job
RECLAIM_AFTER_S = 300.0  # a pending job idle this long belonged to a dead worker; must exceed the timeout
CLAIM_LEASE_S = 60  # one send in progress; a crashed sender's claim expires before the job is reclaimed
SENT_TTL_S = 2 * 86400  # "sent" proofs outlive the 48-hour service window
MAX_RUNS = 3  # a job that keeps killing its worker is dropped after this many starts
CLAIMED, SENT = b"C", b"S"
# After these, later messages of the same job cannot succeed either.
STOPPERS = (errors.OutOfWindow, errors.ResponseLimit, errors.Unfollowed, errors.InvalidOpenid,
            errors.QuotaExceeded, errors.CredentialError, errors.WeChatTransportError, errors.SystemBusy)


@dataclass
class Outbox:
    """What a job needs, built once per worker process in the taskiq startup event."""

    api: WeChatAPI
    redis: aioredis.Redis
    keys: KeyBuilder
    renderer: Renderer
    metrics: Metrics
    poll: float = 0.1
    rounds: tuple[float, ...] = (2.0, 5.0, 15.0, 30.0)  # re-send waits after the client's retries: ~1 min of outage


# -- the jobs ----------------------------------------------------------------------------------

async def send_cs_messages(openid: str, messages: list[dict[str, str]], idem_key: str,
                           context: Annotated[Context, TaskiqDepends()]) -> int:
    return await deliver(context.state.outbox, openid, [OutMessage.from_dict(m) for m in messages], idem_key)


async def deliver_late_reply(openid: str, reply_key: str, deadline_s: float,
                             context: Annotated[Context, TaskiqDepends()]) -> int:
    box: Outbox = context.state.outbox
    messages = await wait_for_reply(box, reply_key, deadline_s)
    if messages is not None:
        return await deliver(box, openid, messages, "late:" + reply_key)
    box.metrics.notifications.labels(kind="late_reply", outcome="apology").inc()
    sorry = OutMessage.text(box.renderer.render("common/late_reply_failed"))
    return await deliver(box, openid, [sorry], "sorry:" + reply_key)


async def wait_for_reply(box: Outbox, reply_key: str, deadline_s: float) -> list[OutMessage] | None:
    """The committed reply (JSON of OutMessages) once it replaces the in-flight marker; None past the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        raw = await box.redis.get(reply_key)
        if raw is not None and not in_flight(raw):
            try:
                return loads(raw)
            except (ValueError, TypeError):
                log.error("unreadable cached reply under %s", reply_key.rsplit(":", 1)[-1])
                return None
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(box.poll)


async def deliver(box: Outbox, openid: str, messages: Sequence[OutMessage], idem_key: str) -> int:
    """Send in order, each at most once across re-runs; returns how many this run sent."""
    if not await _may_run(box, openid, idem_key):
        return 0
    sent = 0
    for index, message in enumerate(messages):
        outcome = await _send_once(box, openid, idem_key, index, message)
        if outcome == "stop":
            break
        sent += outcome == "sent"
    return sent


async def _may_run(box: Outbox, openid: str, idem_key: str) -> bool:
    key = box.keys.job_runs(openid, idem_key)
    runs = int(await box.redis.incr(key))
    await box.redis.expire(key, SENT_TTL_S)
    if runs > MAX_RUNS:
        log.error("job %s for %s dropped after %d starts", idem_key, mask_openid(openid), runs - 1)
        box.metrics.notifications.labels(kind="cs", outcome="dropped").inc()
    return runs <= MAX_RUNS


async def _send_once(box: Outbox, openid: str, idem_key: str, index: int, message: OutMessage) -> str:
    key = box.keys.cs_sent(openid, idem_key, index)
    if not await box.redis.set(key, CLAIMED, nx=True, ex=CLAIM_LEASE_S):
        # Sent before: skip it. Being sent by another run right now: stop, so order is kept.
        return "skipped" if await box.redis.get(key) == SENT else "stop"
    try:
        await _send_with_rounds(box, message, openid)
    except errors.WeChatError as exc:
        await box.redis.delete(key)  # not delivered: a later run may try again
        box.metrics.notifications.labels(kind="cs", outcome="failed").inc()
        log.warning("cs message %d of %s for %s not sent: %s", index, idem_key, mask_openid(openid), exc)
        return "stop" if isinstance(exc, STOPPERS) else "failed"
    await box.redis.set(key, SENT, ex=SENT_TTL_S)
    box.metrics.notifications.labels(kind="cs", outcome="sent").inc()
    return "sent"


async def _send_with_rounds(box: Outbox, message: OutMessage, openid: str) -> None:
    for wait in (*box.rounds, None):
        try:
            await box.api.send_message(message, openid)
            return
        except errors.WeChatError as exc:
            if not exc.retryable or wait is None:
                raise
            await asyncio.sleep(wait)


# -- broker and worker -------------------------------------------------------------------------

def build_broker(settings: Settings, *, client: aioredis.Redis | None = None,
                 reclaim_after: float = RECLAIM_AFTER_S, block_ms: int = 2000,
                 **outbox_options: Any) -> GradbotStreamBroker:
    """The broker with gradbot's jobs registered; ``client`` (web side) is used for enqueueing only."""
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    broker = GradbotStreamBroker(settings.redis_url, queue_name=keys.job_stream(), reclaim_after=reclaim_after,
                                 block_ms=block_ms, client=client)
    broker.register_task(send_cs_messages, task_name=SEND_CS, timeout=JOB_TIMEOUT_S)
    broker.register_task(deliver_late_reply, task_name=LATE_REPLY, timeout=JOB_TIMEOUT_S)
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, partial(_open, settings, outbox_options))
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close)
    register_notify_jobs(broker, settings)  # template messages and broadcasts (bot/services/notify/jobs.py)
    register_retention(broker, settings)  # nightly deletion of photo files (bot/services/retention.py)
    return broker


async def _open(settings: Settings, options: dict[str, Any], state: TaskiqState) -> None:
    state.http = aiohttp.ClientSession()
    state.redis = aioredis.Redis.from_url(settings.redis_url)
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    options = dict(options)
    metrics = options.pop("metrics", None) or Metrics()
    api = WeChatAPI(state.http, settings, RedisTokenCache(state.redis, keys), metrics)
    state.outbox = Outbox(api, state.redis, keys, Renderer(), metrics, **options)


async def _close(state: TaskiqState) -> None:
    # Tolerates a start that failed half-way: close what was opened.
    http: aiohttp.ClientSession | None = getattr(state, "http", None)
    client: aioredis.Redis | None = getattr(state, "redis", None)
    if http is not None:
        await http.close()
    if client is not None:
        await client.aclose()


@dataclass
class RunningWorker:
    receiver: Receiver
    task: asyncio.Task[None]  # ends only when told to stop, or when listening failed (e.g. Redis gone)


@asynccontextmanager
async def running_worker(broker: GradbotStreamBroker, concurrency: int = 8,
                         grace: float = 30.0) -> AsyncIterator[RunningWorker]:
    """Run a worker in this event loop until the block exits (``gradbot worker`` and tests).

    On exit, running jobs get ``grace`` seconds; one still running then is not acked, so another
    worker re-runs it after ``reclaim_after``. A failed start or a failed listener raises here.
    """
    broker.is_worker_process = True
    try:
        await broker.startup()
        receiver = Receiver(broker, max_async_tasks=concurrency, wait_tasks_timeout=grace, run_startup=False)
        finish = asyncio.Event()
        task = asyncio.create_task(receiver.listen(finish))
        try:
            yield RunningWorker(receiver, task)
        finally:
            finish.set()
            await task
    finally:
        await broker.shutdown()


# -- enqueueing --------------------------------------------------------------------------------

class JobQueue:
    """What the web side calls. A second enqueue of the same work (a WeChat retry) is a no-op."""

    def __init__(self, broker: GradbotStreamBroker, client: aioredis.Redis, keys: KeyBuilder,
                 *, once_ttl: int = 600) -> None:
        self.broker = broker
        self.client = client
        self.keys = keys
        self.once_ttl = once_ttl

    @classmethod
    def for_web(cls, settings: Settings, client: aioredis.Redis | None, store: SessionStore,
                tasks: TaskSet) -> JobQueue | LocalJobQueue:
        if client is None:  # memory:// demo: one process, nothing durable to lean on
            from bot.local_jobs import LocalJobQueue

            return LocalJobQueue(settings, store, tasks)
        keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
        return cls(build_broker(settings, client=client), client, keys, once_ttl=settings.dedup_ttl)

    async def enqueue_late_reply(self, openid: str, message_key: str,
                                 deadline_s: float = LATE_DEADLINE_S) -> bool:
        """Send the reply cached for ``message_key`` once it is committed, or an apology past the deadline."""
        reply_key = self.keys.dedup(openid, message_key)
        job = {"openid": openid, "reply_key": reply_key, "deadline_s": deadline_s}
        return await self._once(openid, "late:" + message_key, LATE_REPLY, job)

    async def enqueue_cs(self, openid: str, messages: Sequence[OutMessage], idem_key: str) -> bool:
        if not messages:
            return False
        job = {"openid": openid, "messages": [m.to_dict() for m in messages], "idem_key": "cs:" + idem_key}
        return await self._once(openid, "cs:" + idem_key, SEND_CS, job)

    async def _once(self, openid: str, idem: str, task_name: str, job: dict[str, Any]) -> bool:
        once = self.keys.job_once(openid, idem)
        if not await self.client.set(once, b"1", nx=True, ex=self.once_ttl):
            return False
        task = self.broker.find_task(task_name)
        assert task is not None, task_name
        try:
            await task.kiq(**job)
        except BaseException:
            await self.client.delete(once)  # not queued: let a retry of the message queue it
            raise
        return True

