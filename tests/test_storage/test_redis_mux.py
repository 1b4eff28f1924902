"""The pipelined Redis connection of the per-message scripts: right reply to each caller, and it
recovers (or fails cleanly) when Redis restarts, hangs or is gone. Fault cases use a private server."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.redis_mux import RedisMux, Script
from tests.fixtures.faults import PrivateRedis

ECHO = Script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")


async def test_concurrent_callers_each_get_their_own_reply(redis_url: str, redis_prefix: str) -> None:
    mux = RedisMux.like(aioredis.Redis.from_url(redis_url))
    assert mux is not None
    try:
        replies = await asyncio.gather(*(mux.evalsha(ECHO, [f"{redis_prefix}:{i % 7}"], [f"arg{i}", i])
                                         for i in range(300)))
        assert [(r[0], r[1]) for r in replies] == [(f"{redis_prefix}:{i % 7}".encode(), f"arg{i}".encode())
                                                   for i in range(300)]
        counts = sorted(r[2] for r in replies if r[0] == f"{redis_prefix}:0".encode())
        assert counts == list(range(1, len(counts) + 1))  # every INCR ran exactly once
    finally:
        await mux.close()
        client = aioredis.Redis.from_url(redis_url)
        await client.delete(*(f"{redis_prefix}:{i}" for i in range(7)))
        await client.aclose()


async def test_a_cancelled_caller_does_not_shift_later_replies(redis_url: str, redis_prefix: str) -> None:
    mux = RedisMux.like(aioredis.Redis.from_url(redis_url))
    assert mux is not None
    try:
        await mux.call("PING")  # connected, so the next call is written at once
        first = asyncio.create_task(mux.call("SET", f"{redis_prefix}:a", "1"))
        await asyncio.sleep(0)  # sent, reply not read yet
        first.cancel()
        assert await mux.call("ECHO", "second") == b"second"
        assert await mux.call("GET", f"{redis_prefix}:a") == b"1"  # the cancelled SET still ran
        with pytest.raises(ResponseError):
            await mux.call("NOSUCHCOMMAND")
        assert await mux.call("ECHO", "after an error") == b"after an error"
    finally:
        await mux.close()
        client = aioredis.Redis.from_url(redis_url)
        await client.delete(f"{redis_prefix}:a")
        await client.aclose()


async def test_it_selects_the_clients_database(private_redis: PrivateRedis) -> None:
    url = private_redis.url.rsplit("/", 1)[0] + "/3"
    mux = RedisMux.like(aioredis.Redis.from_url(url))
    assert mux is not None and mux.db == 3
    await mux.call("SET", "where", "db3")
    other, db0 = aioredis.Redis.from_url(url), aioredis.Redis.from_url(private_redis.url)
    try:
        assert await other.get("where") == b"db3"
        assert await db0.get("where") is None
    finally:
        await other.aclose()
        await db0.aclose()
        await mux.close()


def test_it_works_on_uvloop_as_gradbot_serve_runs(redis_url: str) -> None:
    async def main() -> list[object]:
        mux = RedisMux.like(aioredis.Redis.from_url(redis_url))
        assert mux is not None
        try:
            return list(await asyncio.gather(*(mux.call("ECHO", str(i)) for i in range(20))))
        finally:
            await mux.close()

    assert uvloop.run(main()) == [str(i).encode() for i in range(20)]


def test_tls_and_resp3_clients_keep_redis_py() -> None:
    assert RedisMux.like(aioredis.Redis.from_url("rediss://127.0.0.1:6390/0")) is None
    assert RedisMux.like(aioredis.Redis.from_url("redis://127.0.0.1:6390/0", protocol=3)) is None


async def test_restarted_redis_reconnects_and_reloads_the_script(private_redis: PrivateRedis) -> None:
    mux = RedisMux.like(aioredis.Redis.from_url(private_redis.url, socket_timeout=1))
    assert mux is not None
    try:
        assert (await mux.evalsha(ECHO, ["k"], ["x"]))[2] == 1
        private_redis.stop()
        with pytest.raises(RedisConnectionError):
            await mux.evalsha(ECHO, ["k"], ["x"])
        private_redis.start()  # empty: no key, no script
        assert (await mux.evalsha(ECHO, ["k"], ["x"]))[2] == 1
    finally:
        await mux.close()


async def test_hung_redis_times_out_then_recovers(private_redis: PrivateRedis) -> None:
    mux = RedisMux.like(aioredis.Redis.from_url(private_redis.url, socket_timeout=0.3))
    assert mux is not None
    try:
        await mux.call("PING")
        private_redis.pause()
        started = time.monotonic()
        try:
            with pytest.raises(RedisTimeoutError):
                await mux.call("PING")
        finally:
            private_redis.resume()
        assert time.monotonic() - started < 2.0
        assert await mux.call("PING") == b"PONG"
    finally:
        await mux.close()
