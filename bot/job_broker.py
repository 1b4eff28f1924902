"""taskiq-redis's stream broker, adjusted so a job held by a killed worker is really run again.

What taskiq-redis 1.2.4's ``RedisStreamBroker`` does (read from its source): a worker reads with
``XREADGROUP``, a job stays in the group's pending list until the receiver acks it after the job
finished (``XACK``), and a worker claims pending jobs idle for ``idle_timeout`` ms with
``XAUTOCLAIM``. Three gaps matter here, so this subclass changes them:

- The ``XAUTOCLAIM`` pass runs only right after a read that returned new messages; on a quiet queue
  a dead worker's job waits for unrelated traffic. Here the reclaim pass runs every loop, idle or not.
- It reads up to 100 messages at once into a local buffer, where their idle time keeps running;
  another worker can then claim them while they wait, and both run the job. Here one at a time.
- ``XACK`` leaves the entry in the stream forever. Here ack is ``XACK`` + ``XDEL``.

The consumer group starts at id ``0`` rather than ``$`` so jobs queued before the first worker
ever started are not skipped. ``kick`` can use an injected client (the web app's), so enqueueing
opens no second connection pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage
from taskiq.message import BrokerMessage
from taskiq_redis import RedisStreamBroker

log = logging.getLogger("bot.jobs")
LISTEN_RETRY_S = 0.5


class GradbotStreamBroker(RedisStreamBroker):
    def __init__(self, url: str, *, queue_name: str, reclaim_after: float, block_ms: int = 2000,
                 reclaim_every: float = 1.0, client: aioredis.Redis | None = None, **kwargs: Any) -> None:
        super().__init__(url, queue_name=queue_name, consumer_group_name="gradbot", consumer_id="0",
                         idle_timeout=int(reclaim_after * 1000), xread_block=block_ms, xread_count=1,
                         unacknowledged_batch_size=1, **kwargs)
        self.reclaim_every = reclaim_every
        self.client = client
        self._next_reclaim = 0.0

    async def kick(self, message: BrokerMessage) -> None:
        if self.client is None:
            await super().kick(message)
            return
        await self.client.xadd(self.queue_name, {b"data": message.message})

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            pool = self.connection_pool
            async with aioredis.Redis(connection_pool=pool) as conn, conn.pipeline(transaction=True) as pipe:
                pipe.xack(queue_name, self.consumer_group_name, id)
                pipe.xdel(queue_name, id)
                await pipe.execute()

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with aioredis.Redis(connection_pool=self.connection_pool) as conn:
            while True:
                try:
                    reclaimed = await self._reclaim(conn)
                    _raise_if_cancelled()
                    fetched: Any = [] if reclaimed else await conn.xreadgroup(
                        self.consumer_group_name, self.consumer_name, {self.queue_name: ">"},
                        block=self.block, count=1)
                except (RedisTimeoutError, RedisConnectionError) as exc:
                    # A slow read (a busy event loop) or a Redis restart is not the end of the worker:
                    # unacked jobs stay pending and are claimed again once Redis answers.
                    log.warning("job stream read failed, retrying: %s", exc)
                    await asyncio.sleep(LISTEN_RETRY_S)
                    continue
                _raise_if_cancelled()
                for msg_id, fields in reclaimed:
                    yield self._message(msg_id, fields)
                for _stream, entries in fetched or []:
                    for msg_id, fields in entries:
                        yield self._message(msg_id, fields)

    async def _reclaim(self, conn: aioredis.Redis) -> list[tuple[Any, Any]]:
        """Pending entries idle past ``reclaim_after`` (their worker died), at most one per pass."""
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + self.reclaim_every
        result = await conn.xautoclaim(self.queue_name, self.consumer_group_name, self.consumer_name,
                                       min_idle_time=self.idle_timeout, start_id="0-0",
                                       count=self.unacknowledged_batch_size)
        # Redis 6.2 lists a trimmed entry as (id, None); 7.0 drops it from the result itself.
        return [(msg_id, fields) for msg_id, fields in result[1] if fields]

    def _message(self, msg_id: Any, fields: Any) -> AckableMessage:
        queue = self.queue_name
        return AckableMessage(data=fields[b"data"], ack=self._ack_generator(id=msg_id, queue_name=queue))


def _raise_if_cancelled() -> None:
    """Stop when our task was asked to: a cancel can land inside a redis-py command and not surface.

    Seen here (redis-py 8.1, Python 3.11) about once in 150 worker stops: the receiver cancels the
    read, the command still returns normally, and the loop would read on forever, so the worker
    never stopped (reproduced by starting and stopping a worker in a loop).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
