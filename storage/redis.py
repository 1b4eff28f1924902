"""Session store on Redis: dedup, FIFO ticket lock with lease and fencing, record and reply cache.

Uncontended, a message costs two round trips: ``begin`` (dedup + ticket + record read) and ``commit``
(record write + reply cache and its per-student index + hand-off). A waiting message blocks on BLPOP
of its own turn key, which the holder pushes when it commits (only if a later ticket exists, so an
uncontended message leaves no list behind), so one student's messages run strictly in arrival order
across processes; a spin lock would reorder them (reference/dialogs.md §3). A holder that dies is
skipped once its lease expires.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage.base import Begin, LockLost, StoreUnavailable, Turn, in_flight
from storage.keys import KeyBuilder
from storage.redis_mux import RedisMux, Script

DAY = 86400
SLICE = 0.5  # seconds a waiter blocks before it checks for dead holders ahead of it

_BEGIN = """
local prev = redis.call('GET', KEYS[1])
if prev then  -- a duplicate: the first delivery's reply, or its marker while that turn is alive
  if string.sub(prev, 1, 2) ~= 'P:' or redis.call('EXISTS', ARGV[1] .. ':alive:' .. string.sub(prev, 3)) == 1 then
    return {0, prev}
  end
end  -- new, or its turn died with its process (lease run out): this delivery takes a turn of its own
local t = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 86400)
redis.call('SET', KEYS[1], 'P:' .. t, 'EX', ARGV[3])
redis.call('SET', ARGV[1] .. ':alive:' .. t, '1', 'PX', ARGV[2])
local got = redis.call('MGET', KEYS[3], KEYS[4])
local srv = tonumber(got[1] or '0')
if srv >= t then
  srv = t - 1
  redis.call('SET', KEYS[3], srv, 'EX', 86400)
end
if srv == t - 1 then return {1, t, got[2]} end
return {2, t}
"""

_ADVANCE = """
local t = tonumber(ARGV[2])
local srv = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = srv
while srv < t - 1 and redis.call('EXISTS', ARGV[1] .. ':alive:' .. (srv + 1)) == 0 do
  srv = srv + 1
end
if srv ~= start then redis.call('SET', KEYS[1], srv, 'EX', 86400) end
if srv >= t then return {3} end
if redis.call('PEXPIRE', ARGV[1] .. ':alive:' .. t, ARGV[3]) == 0 then return {3} end
if srv == t - 1 then return {1, redis.call('GET', KEYS[2])} end
return {2}
"""

_COMMIT = """
local t = tonumber(ARGV[2])
local srv = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('DEL', ARGV[1] .. ':alive:' .. t)
redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[8], KEYS[3])  -- index the cached reply by time (ms) for an erasure
if t % 16 == 0 then  -- drop the expired ones now and then (each trim costs about as much as the index)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (tonumber(ARGV[8]) - tonumber(ARGV[7]) * 1000))
end
redis.call('EXPIRE', KEYS[5], ARGV[7])
if srv ~= t - 1 then return 0 end
if ARGV[3] == 'set' then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
elseif ARGV[3] == 'del' then
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[1], t, 'EX', 86400)
if tonumber(redis.call('GET', KEYS[4]) or '0') > t then  -- a later message holds a ticket: wake it
  local nxt = ARGV[1] .. ':turn:' .. (t + 1)
  redis.call('RPUSH', nxt, '1')
  redis.call('EXPIRE', nxt, 60)
end
return 1
"""

# Deletes the session record and each indexed cached reply unless it is an in-flight marker (a
# message being handled; it is indexed when it commits). All keys share the student's hash tag.
_FORGET = """
local n = redis.call('DEL', KEYS[1])
for _, k in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local v = redis.call('GET', k)
  if v and v ~= 'P' and string.sub(v, 1, 2) ~= 'P:' then n = n + redis.call('DEL', k) end
end
redis.call('DEL', KEYS[2])
return n
"""


class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder, *, session_ttl: int, dedup_ttl: int,
                 lease_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.session_ttl = session_ttl
        self.dedup_ttl = dedup_ttl
        self.lease_ms = lease_ms
        # A waiter renews its own lease every slice, so a slice must be well inside the lease.
        self.slice = min(SLICE, lease_ms / 3000)
        # The three scripts of every message go over a lean pipelined connection when the client's
        # server allows one (storage/redis_mux.py: about a third of redis-py's CPU per call).
        self._mux = RedisMux.like(client)
        self._scripts = {text: (Script(text), client.register_script(text)) for text in (_BEGIN, _ADVANCE, _COMMIT)}

    async def begin(self, openid: str, message_key: str, wait: float) -> Begin:
        try:
            return await self._begin_turn(openid, message_key, wait)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _begin_turn(self, openid: str, message_key: str, wait: float) -> Begin:
        k = self.keys
        res = await self._run(
            _BEGIN, [k.dedup(openid, message_key), k.ticket(openid), k.serving(openid), k.session(openid)],
            [k.user(openid), self.lease_ms, self.dedup_ttl],
        )
        if res[0] == 0:
            return Begin(cached=res[1])
        ticket = int(res[1])
        if res[0] == 1:
            return Begin(turn=Turn(openid, message_key, ticket, res[2]))
        record = await self._wait_turn(openid, ticket, time.monotonic() + wait)
        return Begin(turn=Turn(openid, message_key, ticket, record))

    async def _wait_turn(self, openid: str, ticket: int, deadline: float) -> bytes | None:
        k = self.keys
        turn_key = f"{k.user(openid)}:turn:{ticket}"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self.client.delete(f"{k.user(openid)}:alive:{ticket}")
                raise LockLost(f"waited too long for ticket {ticket}")
            await self.client.blpop([turn_key], timeout=min(self.slice, max(remaining, 0.01)))
            res = await self._run(_ADVANCE, [k.serving(openid), k.session(openid)],
                                  [k.user(openid), ticket, self.lease_ms])
            if res[0] == 1:
                record: bytes | None = res[1]
                return record
            if res[0] == 3:
                raise LockLost(f"ticket {ticket} was skipped")

    async def _run(self, text: str, keys: list[str], args: list[str | bytes | int]) -> Any:
        script, registered = self._scripts[text]
        if self._mux is not None:
            return await self._mux.evalsha(script, keys, args)
        return await registered(keys=keys, args=args)

    @property
    def renew_every(self) -> float | None:
        return self.lease_ms / 3000  # three chances to renew before the lease runs out

    async def renew(self, turn: Turn) -> bool:
        """PEXPIRE the holder's ``:alive:`` key; it is gone once a waiter has skipped this turn."""
        try:
            return bool(await self.client.pexpire(f"{self.keys.user(turn.openid)}:alive:{turn.ticket}",
                                                  self.lease_ms))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def commit(self, turn: Turn, record: bytes | None, reply: bytes) -> None:
        op = "keep" if record is None else ("del" if record == b"" else "set")
        await self._finish(turn, op, record or b"", reply)

    async def release(self, turn: Turn, reply: bytes) -> None:
        await self._finish(turn, "keep", b"", reply)

    async def _finish(self, turn: Turn, op: str, record: bytes, reply: bytes) -> None:
        k = self.keys
        try:
            ok = await self._run(
                _COMMIT, [k.serving(turn.openid), k.session(turn.openid), k.dedup(turn.openid, turn.message_key),
                          k.ticket(turn.openid), k.replies(turn.openid)],
                [k.user(turn.openid), turn.ticket, op, record, self.session_ttl, reply, self.dedup_ttl,
                 int(time.time() * 1000)],
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not ok:
            raise LockLost(f"ticket {turn.ticket} lost its turn before commit")

    async def wait_reply(self, openid: str, message_key: str, timeout: float) -> bytes | None:
        key = self.keys.dedup(openid, message_key)
        deadline = time.monotonic() + timeout
        while True:
            value: bytes | None
            try:
                value = _as_bytes(await self.client.get(key))
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(str(exc)) from exc
            pending = in_flight(value)
            if not pending or time.monotonic() >= deadline:
                return None if pending else value
            await asyncio.sleep(0.05)

    async def peek(self, openid: str) -> bytes | None:
        try:
            value = _as_bytes(await self.client.get(self.keys.session(openid)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return value

    async def delete(self, openid: str) -> int:
        """Forget the student: the session record and cached replies (erasure; docs/privacy.md).

        Replies still in flight stay, so a WeChat retry of a message being handled now is not run twice.
        Call it while holding the student's turn, or a step in progress may write the record again.
        """
        try:
            return await forget_student(self.client, self.keys, openid)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._mux is not None:
            await self._mux.close()
        await self.client.aclose()


def _as_bytes(value: object) -> bytes | None:
    """redis-py types replies as bytes | str; this client never decodes responses."""
    return value if isinstance(value, bytes) else None


async def forget_student(client: aioredis.Redis, keys: KeyBuilder, openid: str) -> int:
    """Delete a student's session record and cached replies, keeping in-flight markers; keys deleted.

    One script call: the replies are found through the student's index (``KeyBuilder.replies``), not
    by scanning the keyspace (a SCAN cost 0.2 s and 86 ms of Redis CPU with 120,000 cached replies).
    """
    forget = client.register_script(_FORGET)
    return int(await forget(keys=[keys.session(openid), keys.replies(openid)]))
