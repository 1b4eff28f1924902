"""The WeChat access token, shared by every worker and refreshed by one holder at a time.

The cache does not know how to fetch a token: callers pass ``fetch`` (an async callable returning
``(token, expires_in)``), so this module stays free of HTTP and of WeChat. Each stored record carries
a nonce, so :meth:`invalidate` deletes only the record its caller actually used: when two workers
both see 40001 for the same token, the first deletes it and refreshes, the second's delete is a
no-op and it picks up the fresh record. One refresh, however many workers saw the error.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from storage.keys import KeyBuilder

Fetch = Callable[[], Awaitable[tuple[str, int]]]

# Compare-and-delete: remove the record only if it is still the one the caller saw.
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class TokenUnavailable(Exception):
    """No token within the wait: the refreshing holder is stuck or every fetch failed."""


@dataclass(frozen=True, slots=True)
class CachedToken:
    value: str
    record: str  # the stored form, unique per fetch


class TokenCache(Protocol):
    async def get(self, fetch: Fetch) -> CachedToken:
        """The current token; fetches (once, under a lock) when there is none."""

    async def invalidate(self, token: CachedToken) -> bool:
        """Forget ``token`` if it is still the cached one; False when someone already replaced it."""


def keep_seconds(expires_in: int, margin: float) -> float:
    """How long to keep a token: ``expires_in`` less a safety margin (at most a quarter of it)."""
    return max(expires_in - min(margin, expires_in / 4), 0.5)


def _record(value: str) -> CachedToken:
    return CachedToken(value, json.dumps({"token": value, "id": uuid.uuid4().hex}))


class RedisTokenCache:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder, *, margin: float = 300.0,
                 lock_timeout: float = 30.0, wait: float = 30.0, poll: float = 0.05) -> None:
        self.client = client
        self.keys = keys
        self.margin = margin
        self.lock_timeout = lock_timeout
        self.wait = wait
        self.poll = poll
        self._delete_if_same = client.register_script(_DELETE_IF_SAME)

    async def get(self, fetch: Fetch) -> CachedToken:
        deadline = time.monotonic() + self.wait
        while True:
            token = await self._read() or await self._refresh_if_holder(fetch)
            if token is not None:
                return token
            if time.monotonic() >= deadline:
                raise TokenUnavailable(f"no access token after {self.wait:.0f} s")
            await asyncio.sleep(self.poll)

    async def invalidate(self, token: CachedToken) -> bool:
        return bool(await self._delete_if_same(keys=[self.keys.access_token()], args=[token.record]))

    async def _read(self) -> CachedToken | None:
        raw = await self.client.get(self.keys.access_token())
        if raw is None:
            return None
        record = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            return CachedToken(str(json.loads(record)["token"]), record)
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as absent and overwritten by the next refresh

    async def _refresh_if_holder(self, fetch: Fetch) -> CachedToken | None:
        lock = self.client.lock(self.keys.access_token_lock(), timeout=self.lock_timeout,
                                blocking=False, raise_on_release_error=False)
        if not await lock.acquire():
            return None  # someone else is refreshing: the caller polls for their result
        try:
            # Re-read under the lock: the previous holder may have stored a token just now.
            return await self._read() or await self._store(*await fetch())
        finally:
            await lock.release()

    async def _store(self, value: str, expires_in: int) -> CachedToken:
        token = _record(value)
        ttl_ms = int(keep_seconds(expires_in, self.margin) * 1000)
        await self.client.set(self.keys.access_token(), token.record, px=ttl_ms)
        return token


class MemoryTokenCache:
    """One process only (the ``memory://`` demo): same contract, an asyncio.Lock instead of Redis."""

    def __init__(self, *, margin: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.margin = margin
        self.clock = clock
        self._token: CachedToken | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> CachedToken | None:
        return self._token if self._token is not None and self.clock() < self._expires_at else None

    async def get(self, fetch: Fetch) -> CachedToken:
        if (token := self._fresh()) is not None:
            return token
        async with self._lock:
            if (token := self._fresh()) is not None:
                return token
            value, expires_in = await fetch()
            self._token = _record(value)
            self._expires_at = self.clock() + keep_seconds(expires_in, self.margin)
            return self._token

    async def invalidate(self, token: CachedToken) -> bool:
        if self._token != token:
            return False
        self._token = None
        return True
