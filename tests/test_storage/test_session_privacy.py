"""Session records are sealed at rest; a student's record and cached replies can be forgotten."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.config import Settings
from bot.services.identity import make_test_id
from storage.base import IN_FLIGHT
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
    assert await redis_client.get(keys.dedup("oForget", "m2")) == IN_FLIGHT
    assert await redis_client.exists(keys.session("oForget"), keys.dedup("oForget", "m1")) == 0
    assert await redis_client.exists(keys.dedup("oForgetOther", "m1")) == 1
    await store.commit(running.turn, None, b"[]")


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
