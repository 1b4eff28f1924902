"""Which sender job runs which slot of a broadcast, so a broadcast has a bounded number of live senders.

A sender holds its slot with a Redis key (value: its token) that expires unless renewed; a sender
that dies lets it lapse, and the ticker starts a replacement. A second copy of a sender (a job
the queue handed out again) finds the slot held by another token and ends at once.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.keys import KeyBuilder

SLOT_TTL_MS = 6_000  # renewed after every batch (a batch holds about 2 s of sending)

_HOLD = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Slots:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder, ttl_ms: int = SLOT_TTL_MS) -> None:
        self.client = client
        self.keys = keys
        self.ttl_ms = ttl_ms
        self._hold = client.register_script(_HOLD)
        self._drop = client.register_script(_DROP)

    async def hold(self, broadcast_id: int, slot: int, token: str) -> bool:
        """Take the slot, or renew it if ``token`` holds it; False when another sender holds it."""
        return bool(await self._hold(keys=[self.keys.broadcast_slot(broadcast_id, slot)], args=[token, self.ttl_ms]))

    async def drop(self, broadcast_id: int, slot: int, token: str) -> None:
        await self._drop(keys=[self.keys.broadcast_slot(broadcast_id, slot)], args=[token])

    async def vacant(self, broadcast_id: int, slot: int) -> bool:
        return not await self.client.exists(self.keys.broadcast_slot(broadcast_id, slot))

    async def once(self, broadcast_id: int, slot: int, step: str, ttl_s: int) -> bool:
        """True for the first caller only (within ``ttl_s``): one continuation or restart per step."""
        key = self.keys.broadcast_step(broadcast_id, slot, step)
        return bool(await self.client.set(key, b"1", nx=True, ex=ttl_s))
