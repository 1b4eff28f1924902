"""A lean Redis connection for the scripts every message runs: one pipelined connection per event loop.

redis-py's asyncio client spends about 210 µs of CPU on each EVALSHA on this machine (pool checkout and
release, retry wrapper, observability hooks, packing in Python); this connection spends about 50–70 µs:
hiredis packs and parses, and concurrent callers share one socket, each reply going to the oldest
waiting request (Redis answers a connection's commands in order). So it takes only short commands
that never block: BLPOP and the rest stay on redis-py. Failures raise redis-py's exception classes, so
callers catch what they caught before; like the client in bot/app.py, a lost connection is retried
once and a timeout is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int | float


class Script:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - the name Redis gives a script


class _Pipe(asyncio.Protocol):
    """One socket: requests written as they come, replies handed out in the same order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop, self.timeout = loop, timeout
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.alive = False
        self.timer: asyncio.TimerHandle | None = None
        self.out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (what gradbot serve runs on) do not subclass asyncio.Transport.
        self.transport, self.alive = cast(asyncio.Transport, transport), True

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                fut = self.pending.popleft()[0]
                if not fut.done():  # a caller that was cancelled no longer waits
                    fut.set_result(reply)
        except (InvalidResponse, IndexError) as exc:
            self.close(RedisConnectionError(f"protocol error from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by server'}"))

    def send(self, args: Sequence[Arg]) -> asyncio.Future[Any]:
        if not self.alive or self.transport is None:
            raise RedisConnectionError("connection to Redis is closed")
        fut = self.loop.create_future()
        self.pending.append((fut, time.monotonic()))
        if not self.out:  # requests made in the same loop turn leave in one write (one syscall)
            self.loop.call_soon(self._flush)
        self.out.append(hiredis.pack_command(tuple(args)))  # type: ignore[arg-type]
        if self.timer is None:
            self.timer = self.loop.call_later(self.timeout, self._check)
        return fut

    def _flush(self) -> None:
        out, self.out = self.out, []
        if self.alive and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _check(self) -> None:
        """A reply overdue by the socket timeout means a hung server: give up on the connection."""
        self.timer = None
        if not self.pending:
            return
        left = self.pending[0][1] + self.timeout - time.monotonic()
        if left > 0:
            self.timer = self.loop.call_later(left, self._check)
        else:
            self.close(RedisTimeoutError("Timeout reading from Redis"))

    def close(self, exc: Exception) -> None:
        self.alive = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        while self.pending:
            fut = self.pending.popleft()[0]
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class RedisMux:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 6379, path: str = "", db: int = 0,
                 username: str | None = None, password: str | None = None, timeout: float = 3.0,
                 connect_timeout: float = 1.0) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password = username, password
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._pipe: _Pipe | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def like(cls, client: aioredis.Redis) -> RedisMux | None:
        """The same server and database as ``client``; None for TLS, RESP3 or credential providers."""
        pool = client.connection_pool
        kw = pool.connection_kwargs
        if kw.get("credential_provider") is not None or kw.get("protocol") not in (None, 2, "2"):
            return None
        common: dict[str, Any] = {
            "db": int(kw.get("db") or 0), "username": kw.get("username"), "password": kw.get("password"),
            "timeout": float(kw.get("socket_timeout") or 3.0),
            "connect_timeout": float(kw.get("socket_connect_timeout") or kw.get("socket_timeout") or 3.0),
        }
        if pool.connection_class is UnixDomainSocketConnection:
            return cls(path=str(kw["path"]), **common)
        if pool.connection_class is Connection:
            return cls(host=str(kw.get("host", "localhost")), port=int(kw.get("port", 6379)), **common)
        return None

    async def call(self, *args: Arg) -> Any:
        try:
            return await self._once(args)
        except RedisConnectionError:
            return await self._once(args)  # a connection lost since the last call: once more, afresh

    async def evalsha(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script.text)  # a restarted or flushed Redis
        return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close(RedisConnectionError("closed"))
            self._pipe = None

    async def _once(self, args: Sequence[Arg]) -> Any:
        pipe = self._pipe
        if pipe is None or not pipe.alive or pipe.loop is not asyncio.get_running_loop():
            pipe = await self._connect()
        return _result(await pipe.send(args))

    async def _connect(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            pipe = self._pipe
            if pipe is not None and pipe.alive and pipe.loop is loop:
                return pipe
            self._pipe = await self._open(loop)
            return self._pipe

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Pipe:
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path:
                    _, pipe = await loop.create_unix_connection(lambda: _Pipe(loop, self.timeout), self.path)
                else:
                    _, pipe = await loop.create_connection(lambda: _Pipe(loop, self.timeout), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        try:
            if self.password:
                _result(await pipe.send(("AUTH", self.username, self.password) if self.username
                                        else ("AUTH", self.password)))
            if self.db:
                _result(await pipe.send(("SELECT", self.db)))
        except BaseException:
            pipe.close(RedisConnectionError("connection set-up failed"))
            raise
        return pipe


def _result(reply: Any) -> Any:
    if isinstance(reply, ResponseError):
        raise reply
    return reply
