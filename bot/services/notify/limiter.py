"""Rate limits for template messages, shared by every worker through Redis.

- A token bucket per sender (a broadcast): ``rate`` tokens per second, a small burst. Redis's own
  clock (``TIME`` inside the script) refills it, so workers on different machines agree.
- A daily counter (China's calendar day) capping broadcast sends below WeChat's template quota.
- A pause flag with an expiry, set when WeChat answers 45009 (quota reached) or our own daily cap
  is used up; every template sender waits while it is set.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from storage.keys import KeyBuilder

CHINA = ZoneInfo("Asia/Shanghai")
BURST_SECONDS = 0.05  # a full bucket holds this many seconds of sending

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
local wait = 0
if granted < want then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
"""

_DAY = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local allow = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
if allow > 0 then
  redis.call('INCRBY', KEYS[1], allow)
  redis.call('EXPIRE', KEYS[1], 172800)
end
return allow
"""


def china_day(now: datetime) -> str:
    return now.astimezone(CHINA).strftime("%Y%m%d")


def seconds_to_china_midnight(now: datetime) -> float:
    local = now.astimezone(CHINA)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - local).total_seconds())


class RateLimiter:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder) -> None:
        self.client = client
        self.keys = keys
        self._take = client.register_script(_TAKE)
        self._day = client.register_script(_DAY)

    async def take(self, name: str, rate: float, want: int) -> tuple[int, float]:
        """Up to ``want`` tokens now; returns (granted, seconds until the next token if short)."""
        burst = max(1.0, rate * BURST_SECONDS)
        granted, wait = await self._take(keys=[self.keys.notify_bucket(name)], args=[rate, burst, want])
        return int(granted), float(wait)

    async def spend_day(self, n: int, limit: int, now: datetime) -> int:
        """How many of ``n`` sends today's cap still allows (and counts them)."""
        return int(await self._day(keys=[self.keys.notify_day(china_day(now))], args=[n, limit]))

    async def pause(self, seconds: float, reason: str) -> None:
        await self.client.set(self.keys.notify_pause(), reason, px=max(1, int(seconds * 1000)))

    async def paused_for(self) -> float:
        """Seconds the pause still lasts (0: not paused)."""
        ms = int(await self.client.pttl(self.keys.notify_pause()))
        return ms / 1000 if ms > 0 else 0.0

    async def resume(self) -> None:
        await self.client.delete(self.keys.notify_pause())
