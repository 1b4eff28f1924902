"""Caching in front of a paid verifier: the same person is never billed twice within a TTL.

Cache keys are an HMAC-SHA256 of (type, name, number) under a server secret, so the store never
holds an ID number or a name, and a leaked store cannot be reversed by hashing all possible IDs
(18-digit IDs have too little entropy for a plain hash). Values are :class:`Verification` records,
which hold no personal data. Only verdicts are cached, each with its own TTL; upstream errors and
rate limits are not. Concurrent calls for the same key in one process share one upstream call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from redis.asyncio import Redis

from bot.services.identity.documents import IdType, normalise_number
from bot.services.identity.verify import IdentityVerifier, Outcome, Verification
from storage.keys import KeyBuilder

log = logging.getLogger("gradbot.identity")

DAY = 24 * 3600
DEFAULT_TTLS: Mapping[Outcome, int] = {
    Outcome.MATCH: 30 * DAY,  # a name and number that matched keep matching
    Outcome.MISMATCH: DAY,  # short: the authority's record may be corrected (name change)
    Outcome.NO_RECORD: 6 * 3600,  # new cards reach the database within hours to days
    Outcome.INVALID_INPUT: DAY,
}
KEY_VERSION = b"idv1"


class KeyValueStore(Protocol):
    """The little a cache needs; :class:`RedisKeyValue` and :class:`MemoryKeyValue` provide it."""

    async def get(self, key: str) -> str | bytes | None: ...

    async def set(self, key: str, value: str, ttl: int) -> None: ...


def verification_key(secret: bytes, id_type: IdType, name: str, id_number: str) -> str:
    parts = (KEY_VERSION, id_type.value.encode(), name.strip().casefold().encode(),
             normalise_number(id_type, id_number).encode())
    return hmac.new(secret, b"\x1f".join(parts), hashlib.sha256).hexdigest()


class MemoryKeyValue:
    """In-process store for tests, the demo and single-process runs; ``clock`` in seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        value, expires = self._data.get(key, ("", 0.0))
        if expires <= self._clock():
            self._data.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, ttl: int) -> None:
        self._data[key] = (value, self._clock() + ttl)


class RedisKeyValue:
    """Redis-backed store; the key name is spelled by :meth:`KeyBuilder.identity_verification`."""

    def __init__(self, client: Redis, keys: KeyBuilder) -> None:
        self._client = client
        self._keys = keys

    async def get(self, key: str) -> str | bytes | None:
        value: str | bytes | None = await self._client.get(self._keys.identity_verification(key))
        return value

    async def set(self, key: str, value: str, ttl: int) -> None:
        await self._client.set(self._keys.identity_verification(key), value, ex=ttl)


class CachingVerifier:
    def __init__(self, inner: IdentityVerifier, store: KeyValueStore, secret: bytes,
                 ttls: Mapping[Outcome, int] = DEFAULT_TTLS) -> None:
        if len(secret) < 16:
            raise ValueError("the identity cache secret needs at least 16 bytes")
        self._inner, self._store, self._secret, self._ttls = inner, store, secret, ttls
        self._inflight: dict[str, asyncio.Task[Verification]] = {}

    async def verify(self, id_type: IdType, name: str, id_number: str) -> Verification:
        key = verification_key(self._secret, id_type, name, id_number)
        cached = await self._read(key)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is not None:
            return (await asyncio.shield(task)).from_cache()
        task = asyncio.ensure_future(self._fetch(key, id_type, name, id_number))
        self._inflight[key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _fetch(self, key: str, id_type: IdType, name: str, id_number: str) -> Verification:
        result = await self._inner.verify(id_type, name, id_number)
        ttl = self._ttls.get(result.outcome, 0) if result.outcome.final else 0
        if ttl > 0:
            await self._write(key, result, ttl)
        return result

    async def _read(self, key: str) -> Verification | None:
        # A cache that fails must not block verification: treat it as a miss.
        try:
            raw = await self._store.get(key)
            return Verification.from_json(raw).from_cache() if raw else None
        except Exception:  # store errors and corrupt records alike
            log.warning("identity cache read failed for key %s…", key[:12], exc_info=True)
            return None

    async def _write(self, key: str, result: Verification, ttl: int) -> None:
        try:
            await self._store.set(key, result.to_json(), ttl)
        except Exception:  # the verdict is still good; only the cache is lost
            log.warning("identity cache write failed for key %s…", key[:12], exc_info=True)
