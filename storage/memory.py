"""In-process session store for the single-process demo (``memory://``) and pure unit tests.

Not for production: state dies with the process and is invisible to other workers.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import TypeVar

from storage.base import IN_FLIGHT, Begin, LockLost, Turn

K = TypeVar("K")


class MemorySessionStore:
    def __init__(self, *, session_ttl: int, dedup_ttl: int) -> None:
        self.session_ttl = session_ttl
        self.dedup_ttl = dedup_ttl
        self._records: dict[str, tuple[bytes, float]] = {}
        self._dedup: dict[tuple[str, str], tuple[bytes, float]] = {}
        # asyncio.Lock wakes waiters in FIFO order, which is the per-student order we need.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._ticket = 0

    @staticmethod
    def _get(table: dict[K, tuple[bytes, float]], key: K) -> bytes | None:
        item = table.get(key)
        if item is None or item[1] < time.monotonic():
            table.pop(key, None)
            return None
        return item[0]

    async def begin(self, openid: str, message_key: str, wait: float) -> Begin:
        dkey = (openid, message_key)
        cached = self._get(self._dedup, dkey)
        if cached is not None:
            return Begin(cached=cached)
        self._dedup[dkey] = (IN_FLIGHT, time.monotonic() + self.dedup_ttl)
        try:
            await asyncio.wait_for(self._locks[openid].acquire(), wait)
        except TimeoutError:
            self._dedup.pop(dkey, None)  # never handled: a retry may run it
            raise LockLost("waited too long") from None
        self._ticket += 1
        return Begin(turn=Turn(openid, message_key, self._ticket, self._get(self._records, openid)))

    async def commit(self, turn: Turn, record: bytes | None, reply: bytes) -> None:
        if record == b"":
            self._records.pop(turn.openid, None)
        elif record is not None:
            self._records[turn.openid] = (record, time.monotonic() + self.session_ttl)
        await self.release(turn, reply)

    @property
    def renew_every(self) -> float | None:
        return None  # an in-process lock has no lease: it is held until released

    async def renew(self, turn: Turn) -> bool:
        return True

    async def release(self, turn: Turn, reply: bytes) -> None:
        self._dedup[(turn.openid, turn.message_key)] = (reply, time.monotonic() + self.dedup_ttl)
        lock = self._locks[turn.openid]
        if lock.locked():
            lock.release()

    async def wait_reply(self, openid: str, message_key: str, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            value = self._get(self._dedup, (openid, message_key))
            if value != IN_FLIGHT or time.monotonic() >= deadline:
                return None if value == IN_FLIGHT else value
            await asyncio.sleep(0.02)

    async def peek(self, openid: str) -> bytes | None:
        return self._get(self._records, openid)

    async def delete(self, openid: str) -> int:
        """Forget the record and the cached replies (in-flight markers stay, as in the Redis store)."""
        gone = [k for k, (v, _) in self._dedup.items() if k[0] == openid and v != IN_FLIGHT]
        for key in gone:
            del self._dedup[key]
        return len(gone) + (self._records.pop(openid, None) is not None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
