"""Exactly once and in order: WeChat retries, bursts from one student, several workers, dead holders."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from bot.config import Settings
from bot.records import data_keyring
from bot.wechat.inbound import Inbound
from dialogs.session import SessionRecord
from dialogs.spec import say
from handlers.base import Context, Outcome
from storage.base import LockLost, SessionStore, in_flight
from storage.keys import KeyBuilder
from storage.memory import MemorySessionStore
from storage.sealed import open_record
from tests.fixtures.app import Gradbot, GradbotFactory
from tests.fixtures.services import SessionStoreFactory


class SlowRecorder:
    """A handler that takes ``delay`` seconds and appends each message to the session (runs counted)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.runs: list[str] = []

    async def __call__(self, inbound: Inbound, ctx: Context) -> Outcome:
        self.runs.append(inbound.content)
        await asyncio.sleep(self.delay)
        ctx.session.flags.setdefault("seen", []).append(inbound.content)
        return Outcome([say("common/help")])


async def _record(redis_client: aioredis.Redis, settings: Settings, openid: str) -> SessionRecord:
    raw = await redis_client.get(KeyBuilder(settings.redis_prefix, settings.wechat_appid).session(openid))
    return SessionRecord.loads(open_record(data_keyring(settings), openid, raw))  # records are sealed at rest


async def test_three_concurrent_deliveries_run_the_handler_once_and_get_the_same_reply(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    handler = SlowRecorder(0.3)
    bot = await make_gradbot(dispatch=handler)
    xml = bot.wechat.text_xml("oRetry", "同一条消息", msg_id=123456789)
    query, body = bot.wechat.sign(xml, "oRetry")
    responses = await asyncio.gather(*(bot.client.post(f"/wechat?{query}", data=body) for _ in range(3)))
    bodies = [await r.read() for r in responses]
    assert handler.runs == ["同一条消息"]
    assert all(r.status == 200 for r in responses)
    assert bodies[0] == bodies[1] == bodies[2] and b"<Content>" in bodies[0]
    late = await bot.client.post(f"/wechat?{query}", data=body)  # a retry after the first finished
    assert await late.read() == bodies[0] and handler.runs == ["同一条消息"]
    assert (await _record(redis_client, settings, "oRetry")).v == 1
    metrics = await (await bot.client.get("/metrics")).text()
    assert "gradbot_duplicates_total 3.0" in metrics


async def _fire_in_order(bots: list[Gradbot], redis_client: aioredis.Redis, settings: Settings,
                         openid: str, count: int) -> list[asyncio.Task[object]]:
    """Send ``count`` messages so that each has reached the server before the next leaves."""
    ticket_key = KeyBuilder(settings.redis_prefix, settings.wechat_appid).ticket(openid)
    tasks: list[asyncio.Task[object]] = []
    for i in range(count):
        bot = bots[i % len(bots)]
        xml = bot.wechat.text_xml(openid, f"m{i:02d}")
        tasks.append(asyncio.create_task(bot.post_xml(xml, openid)))
        while int(await redis_client.get(ticket_key) or 0) < i + 1:
            await asyncio.sleep(0.002)
    return tasks


async def test_twenty_rapid_messages_from_one_student_are_handled_in_arrival_order(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    handler = SlowRecorder(0.02)
    bot = await make_gradbot(dispatch=handler)
    tasks = await _fire_in_order([bot], redis_client, settings, "oBurst", 20)
    await asyncio.gather(*tasks)
    expected = [f"m{i:02d}" for i in range(20)]
    assert handler.runs == expected
    record = await _record(redis_client, settings, "oBurst")
    assert record.flags["seen"] == expected and record.v == 20


async def test_order_holds_across_two_app_instances_sharing_redis(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    first, second = SlowRecorder(0.01), SlowRecorder(0.01)
    bots = [await make_gradbot(dispatch=first), await make_gradbot(dispatch=second)]
    tasks = await _fire_in_order(bots, redis_client, settings, "oTwoWorkers", 10)
    await asyncio.gather(*tasks)
    record = await _record(redis_client, settings, "oTwoWorkers")
    assert record.flags["seen"] == [f"m{i:02d}" for i in range(10)] and record.v == 10
    assert len(first.runs) == len(second.runs) == 5


async def test_different_students_run_in_parallel(make_gradbot: GradbotFactory) -> None:
    handler = SlowRecorder(0.3)
    bot = await make_gradbot(dispatch=handler)
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(bot.say(f"oParallel{i}", "hi") for i in range(8)))
    # Serialised, eight 0.3 s handlers would take 2.4 s; in parallel they overlap (generous bound).
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_dead_holder_blocks_its_student_only_until_the_lease_expires(
    redis_session_store: SessionStoreFactory
) -> None:
    store = redis_session_store(lease_ms=300)
    dead = await store.begin("oDead", "m1", wait=1)
    assert dead.turn is not None  # taken and never committed: its process "died"
    waiting = await store.begin("oDead", "m2", wait=3)
    assert waiting.turn is not None and waiting.turn.ticket == dead.turn.ticket + 1
    await store.commit(waiting.turn, b'{"v":1}', b"[]")
    nxt = await store.begin("oDead", "m3", wait=1)
    assert nxt.turn is not None and nxt.turn.record == b'{"v":1}'
    await store.commit(nxt.turn, None, b"[]")


async def test_a_retry_waits_for_a_live_turn_but_reruns_the_message_of_a_dead_one(
    redis_session_store: SessionStoreFactory
) -> None:
    store = redis_session_store(lease_ms=300)
    dead = await store.begin("oRerun", "m1", wait=1)
    assert dead.turn is not None
    early = await store.begin("oRerun", "m1", wait=1)  # WeChat's retry while the turn is alive
    assert early.turn is None and in_flight(early.cached)
    await asyncio.sleep(0.4)  # the holder's process "died": its lease runs out
    late = await store.begin("oRerun", "m1", wait=1)
    assert late.turn is not None and late.turn.ticket == dead.turn.ticket + 1  # handled again, in its own turn
    await store.commit(late.turn, b'{"v":1}', b'[{"type":"text","content":"ok"}]')
    again = await store.begin("oRerun", "m1", wait=1)
    assert again.cached == b'[{"type":"text","content":"ok"}]'


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_a_message_that_never_reached_its_turn_is_run_by_its_retry(
    kind: str, redis_session_store: SessionStoreFactory
) -> None:
    store: SessionStore = (redis_session_store(lease_ms=120_000) if kind == "redis"
                           else MemorySessionStore(session_ttl=60, dedup_ttl=60))
    holder = await store.begin("oNoTurn", "m1", wait=1)
    assert holder.turn is not None
    with pytest.raises(LockLost):  # the student was told 系统繁忙
        await store.begin("oNoTurn", "m2", wait=0.1)
    await store.commit(holder.turn, None, b"[]")
    retry = await store.begin("oNoTurn", "m2", wait=1)
    assert retry.turn is not None  # not an empty "still in flight" answer for the next 10 minutes
    await store.commit(retry.turn, None, b"[]")


async def test_a_commit_wakes_the_next_waiter_and_an_uncontended_one_leaves_no_turn_key(
    redis_session_store: SessionStoreFactory, redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = redis_session_store(lease_ms=120_000)
    store.slice = 60.0  # a waiter nobody wakes would sleep a minute in BLPOP
    first = await store.begin("oWake", "m1", wait=1)
    assert first.turn is not None
    second = asyncio.create_task(store.begin("oWake", "m2", wait=90))
    ticket_key = KeyBuilder(settings.redis_prefix, settings.wechat_appid).ticket("oWake")
    while int(await redis_client.get(ticket_key) or 0) < 2:
        await asyncio.sleep(0.005)
    await store.commit(first.turn, b'{"v":1}', b"[]")
    woken = await asyncio.wait_for(second, 10)  # pushed awake by the commit, not by the BLPOP timeout
    assert woken.turn is not None and woken.turn.record == b'{"v":1}'
    await store.commit(woken.turn, b'{"v":2}', b"[]")
    alone = await store.begin("oWake", "m3", wait=1)
    assert alone.turn is not None
    await store.commit(alone.turn, None, b"[]")
    assert [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}*:turn:*")] == []


async def test_a_holder_whose_turn_was_skipped_cannot_commit(
    redis_session_store: SessionStoreFactory
) -> None:
    store = redis_session_store(lease_ms=200)
    slow = await store.begin("oFenced", "m1", wait=1)
    after = await store.begin("oFenced", "m2", wait=3)  # skips m1 once its lease runs out
    assert slow.turn is not None and after.turn is not None
    await store.commit(after.turn, b'{"v":7}', b"[]")
    try:
        await store.commit(slow.turn, b'{"v":99}', b"[]")
    except Exception as exc:  # LockLost
        assert "lost" in str(exc)
    else:
        raise AssertionError("a fenced holder committed")
    assert await store.peek("oFenced") == b'{"v":7}'


async def test_redis_down_gets_a_busy_reply_in_time_and_readyz_fails(
    make_gradbot: GradbotFactory, settings: Settings
) -> None:
    from tests.fixtures.services import free_port

    bot = await make_gradbot(settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    reply = await bot.say("oNoRedis", "帮助")
    assert reply is not None and "系统繁忙" in reply["Content"]
    ready = await bot.client.get("/readyz")
    assert ready.status == 503 and json.loads(await ready.text())["redis"] is False


async def test_reply_past_the_budget_is_success_and_queued_for_later(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    handler = SlowRecorder(0.6)
    bot = await make_gradbot(settings.with_(reply_budget=0.2), dispatch=handler)
    xml = bot.wechat.text_xml("oSlow", "慢")
    resp = await bot.post_xml(xml, "oSlow")
    assert await resp.text() == "success"
    assert bot.jobs.late == [("oSlow", xml.split("<MsgId>")[1].split("<")[0].join(("m", "")))]
    await asyncio.sleep(0.6)  # the step finishes in the background and caches its reply
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    cached = await redis_client.get(keys.dedup("oSlow", bot.jobs.late[0][1]))
    assert cached is not None and "实名认证" in cached.decode()


async def test_a_step_longer_than_the_lease_keeps_its_turn(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    """A slow step (WeChat slow to hand over a photo, a starved CPU) renews its lease while it runs, so
    the student's next message waits for it instead of skipping a holder that is alive."""
    handler = SlowRecorder(1.0)  # more than three leases of 0.3 s
    bot = await make_gradbot(settings.with_(lock_lease_ms=300), dispatch=handler)
    tasks = await _fire_in_order([bot], redis_client, settings, "oLongStep", 2)
    responses = await asyncio.gather(*tasks)
    record = await _record(redis_client, settings, "oLongStep")
    assert record.flags["seen"] == ["m00", "m01"] and record.v == 2  # both saved, in order, one at a time
    assert handler.runs == ["m00", "m01"] and all(r.status == 200 for r in responses)  # type: ignore[attr-defined]
