"""Session records are sealed at rest; a student's record and cached replies can be forgotten."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.config import Settings
from bot.services.identity import make_test_id
from storage.base import IN_FLIGHT, in_flight
from storage.keys import KeyBuilder
from storage.memory import MemorySessionStore
from storage.sealed import SealedSessionStore
from storage.sql.crypto import Keyring, generate_key
from tests.fixtures.app import Gradbot
from tests.fixtures.conversation import Student
from tests.fixtures.services import SessionStoreFactory

ID_NUMBER = make_test_id("430102", "19990101", "123")


async def test_a_student_half_way_through_binding_has_no_clear_name_or_number_in_redis(
    gradbot: Gradbot, redis_client: aioredis.Redis, settings: Settings
) -> None:
    student = Student(gradbot, "oSealed_bind_0001")
    for text in ("实名认证", "同意", "1", "欧阳娜娜", ID_NUMBER):
        await student.send(text)
    assert await student.where() == "bind/confirm"  # the record now carries the name and the number
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    raw = await redis_client.get(keys.session(student.openid))
    assert raw is not None and raw.startswith(b"g1.")
    assert ID_NUMBER.encode() not in raw and "欧阳娜娜".encode() not in raw
    assert (await student.record()).top.data["id_number"] == ID_NUMBER  # type: ignore[union-attr]


async def test_a_record_copied_to_another_student_does_not_open(
    redis_client: aioredis.Redis, settings: Settings, redis_session_store: SessionStoreFactory
) -> None:
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    store = SealedSessionStore(redis_session_store(), Keyring(generate_key()))
    begin = await store.begin("oSealA", "m1", wait=1)
    assert begin.turn is not None
    await store.commit(begin.turn, b'{"v":1,"flags":{"x":1}}', b"[]")
    assert await store.peek("oSealA") == b'{"v":1,"flags":{"x":1}}'
    await redis_client.set(keys.session("oSealB"), await redis_client.get(keys.session("oSealA")) or b"")
    assert await store.peek("oSealB") is None
    other = await store.begin("oSealB", "m1", wait=1)
    assert other.turn is not None and other.turn.record is None  # starts afresh, as after a Redis loss
    await store.commit(other.turn, None, b"[]")


async def test_delete_forgets_record_and_replies_but_keeps_a_message_in_flight(
    redis_client: aioredis.Redis, settings: Settings, redis_session_store: SessionStoreFactory
) -> None:
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    store = redis_session_store()
    done = await store.begin("oForget", "m1", wait=1)
    assert done.turn is not None
    await store.commit(done.turn, b'{"v":1}', b'[{"type":"text","content":"hi"}]')
    running = await store.begin("oForget", "m2", wait=1)
    assert running.turn is not None
    await redis_client.set(keys.dedup("oForgetOther", "m1"), b"[]")
    assert await store.delete("oForget") == 2  # the record and m1's reply
    assert in_flight(await redis_client.get(keys.dedup("oForget", "m2")))
    assert await redis_client.exists(keys.session("oForget"), keys.dedup("oForget", "m1")) == 0
    assert await redis_client.exists(keys.dedup("oForgetOther", "m1")) == 1
    await store.commit(running.turn, None, b"[]")


async def test_forgetting_a_student_is_one_script_call_not_a_scan_of_the_keyspace(
    redis_client: aioredis.Redis, settings: Settings, redis_session_store: SessionStoreFactory
) -> None:
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    store = redis_session_store()
    for i in range(3):
        begin = await store.begin("oIndexed", f"m{i}", wait=1)
        assert begin.turn is not None
        await store.commit(begin.turn, b'{"v":1}', b"[]")
    await redis_client.mset({keys.dedup(f"oOther{i}", "m1"): b"[]" for i in range(500)})
    seen: list[str] = []

    async def watch() -> None:
        async with redis_client.monitor() as m:
            async for command in m.listen():
                text = str(command.get("command", ""))
                if command.get("client_type") != "lua" and settings.redis_prefix in text:
                    seen.append(text.split()[0].upper())

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    assert await store.delete("oIndexed") == 4  # the record and three replies
    await asyncio.sleep(0.2)
    watcher.cancel()
    assert seen == ["EVALSHA"]  # a SCAN would cost about 600 round trips with 10 minutes of traffic
    gone = [keys.dedup("oIndexed", f"m{i}") for i in range(3)] + [keys.replies("oIndexed")]
    assert await redis_client.exists(*gone) == 0
    assert await redis_client.exists(*(keys.dedup(f"oOther{i}", "m1") for i in range(500))) == 500


async def test_the_reply_index_holds_only_replies_still_cached(
    redis_client: aioredis.Redis, settings: Settings, redis_session_store: SessionStoreFactory
) -> None:
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    store = redis_session_store(ttl=1)
    sent = [f"m{i}" for i in range(1, 17)]  # the 16th ticket trims the index
    for key in sent:
        begin = await store.begin("oTrim", key, wait=1)
        assert begin.turn is not None
        await store.commit(begin.turn, None, b"[]")
        await asyncio.sleep(0.6 if key in ("m1", "m2") else 0)
    # m1's reply expired (1.2 s > 1 s) and left the index; the index lives as long as the newest reply.
    indexed = set(await redis_client.zrange(keys.replies("oTrim"), 0, -1))
    assert indexed == {keys.dedup("oTrim", k).encode() for k in sent[1:]}
    assert 0 < await redis_client.pttl(keys.replies("oTrim")) <= 1000


async def test_memory_store_delete_behaves_alike() -> None:
    store = MemorySessionStore(session_ttl=60, dedup_ttl=60)
    first = await store.begin("oMem", "m1", wait=1)
    assert first.turn is not None
    await store.commit(first.turn, b'{"v":1}', b"[]")
    running = await store.begin("oMem", "m2", wait=1)
    assert running.turn is not None
    assert await store.delete("oMem") == 2
    assert await store.peek("oMem") is None
    assert (await store.begin("oMem", "m2", wait=0.1)).cached == IN_FLIGHT
