"""The shared access-token cache: one fetch however many callers, and invalidation that cannot thrash."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis

from storage.keys import KeyBuilder
from storage.tokens import MemoryTokenCache, RedisTokenCache, TokenCache, TokenUnavailable, keep_seconds


class Fetcher:
    """A token source that counts its calls; ``gate`` holds each fetch until the test opens it."""

    def __init__(self, expires_in: int = 7200) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self._n = itertools.count(1)

    async def __call__(self) -> tuple[str, int]:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("token endpoint down")
        return f"token-{next(self._n)}", self.expires_in


@pytest.fixture
def keys(redis_prefix: str) -> KeyBuilder:
    return KeyBuilder(redis_prefix, "wxappid")


@pytest.fixture(params=["redis", "memory"])
def cache(request: pytest.FixtureRequest, redis_client: aioredis.Redis, keys: KeyBuilder) -> TokenCache:
    if request.param == "memory":
        return MemoryTokenCache()
    return RedisTokenCache(redis_client, keys, poll=0.01)


async def test_fetches_once_then_serves_from_cache(cache: TokenCache) -> None:
    fetch = Fetcher()
    first = await cache.get(fetch)
    second = await cache.get(fetch)
    assert first == second and first.value == "token-1"
    assert fetch.calls == 1


async def test_concurrent_callers_share_one_fetch(cache: TokenCache) -> None:
    fetch = Fetcher()
    fetch.gate.clear()
    callers = [asyncio.create_task(cache.get(fetch)) for _ in range(20)]
    await asyncio.sleep(0.05)
    fetch.gate.set()
    tokens = await asyncio.gather(*callers)
    assert {t.value for t in tokens} == {"token-1"}
    assert fetch.calls == 1


async def test_invalidate_only_removes_the_token_the_caller_used(cache: TokenCache) -> None:
    fetch = Fetcher()
    stale = await cache.get(fetch)
    assert await cache.invalidate(stale) is True
    fresh = await cache.get(fetch)
    # A second worker that saw the same error on the stale token must not throw away the fresh one.
    assert await cache.invalidate(stale) is False
    assert await cache.get(fetch) == fresh
    assert fetch.calls == 2


async def test_same_token_string_refetched_is_still_a_new_record(cache: TokenCache) -> None:
    async def same() -> tuple[str, int]:
        return "always-the-same", 7200

    first = await cache.get(same)
    await cache.invalidate(first)
    second = await cache.get(same)
    assert second.value == first.value and second != first
    assert await cache.invalidate(first) is False


async def test_failed_fetch_propagates_and_the_next_caller_retries(cache: TokenCache) -> None:
    fetch = Fetcher()
    fetch.fail = True
    with pytest.raises(RuntimeError):
        await cache.get(fetch)
    fetch.fail = False
    assert (await cache.get(fetch)).value == "token-1"
    assert fetch.calls == 2


async def test_two_redis_clients_share_one_token(redis_url: str, redis_client: aioredis.Redis,
                                                 keys: KeyBuilder) -> None:
    other = aioredis.Redis.from_url(redis_url)
    try:
        fetch = Fetcher()
        a, b = RedisTokenCache(redis_client, keys), RedisTokenCache(other, keys)
        assert (await a.get(fetch)) == (await b.get(fetch))
        assert fetch.calls == 1
    finally:
        await other.aclose()


async def test_redis_ttl_is_expires_in_less_the_margin(redis_client: aioredis.Redis, keys: KeyBuilder) -> None:
    await RedisTokenCache(redis_client, keys, margin=300).get(Fetcher(expires_in=7200))
    ttl = await redis_client.pttl(keys.access_token())
    assert 6_800_000 < ttl <= 6_900_000


async def test_waiter_gives_up_when_the_holder_never_finishes(redis_client: aioredis.Redis,
                                                              keys: KeyBuilder) -> None:
    await redis_client.set(keys.access_token_lock(), "someone-else", px=60_000)
    cache = RedisTokenCache(redis_client, keys, wait=0.2, poll=0.02)
    fetch = Fetcher()
    with pytest.raises(TokenUnavailable):
        await cache.get(fetch)
    assert fetch.calls == 0


async def test_unreadable_record_is_replaced(redis_client: aioredis.Redis, keys: KeyBuilder) -> None:
    await redis_client.set(keys.access_token(), b"\x00garbage")
    assert (await RedisTokenCache(redis_client, keys).get(Fetcher())).value == "token-1"


async def test_memory_cache_expires_with_its_clock() -> None:
    now = [0.0]
    cache = MemoryTokenCache(margin=300, clock=lambda: now[0])
    fetch = Fetcher(expires_in=7200)
    await cache.get(fetch)
    now[0] = 6899.0
    await cache.get(fetch)
    assert fetch.calls == 1
    now[0] = 6901.0
    assert (await cache.get(fetch)).value == "token-2"


@pytest.mark.parametrize(("expires_in", "kept"), [(7200, 6900), (300, 225), (4, 3), (0, 0.5)])
def test_keep_seconds(expires_in: int, kept: float) -> None:
    assert keep_seconds(expires_in, 300) == kept
