"""Redis killed, restarted empty, or hung in the middle of conversations (a private redis-server).

A reply that reaches the student as a passive XML reply left within the reply budget: past it the
callback answers "success" instead. So "系统繁忙" in the passive reply is the proof that the busy answer
came in time; the measured times are printed (``-s``) and recorded in docs/operations.md.
"""

from __future__ import annotations

import json
import time

from bot import keys
from bot.config import Settings
from tests.fixtures.app import Gradbot, GradbotFactory
from tests.fixtures.conversation import Student
from tests.fixtures.faults import PrivateRedis

BUSY = "系统繁忙"


async def timed(student: Student, text: str, label: str) -> str:
    started = time.perf_counter()
    reply = await student.send(text)
    print(f"FIGURE {label}: {time.perf_counter() - started:.3f} s")
    return reply


async def ready(bot: Gradbot) -> tuple[int, dict[str, bool]]:
    resp = await bot.client.get("/readyz")
    return resp.status, json.loads(await resp.text())


async def bound_and_linking(bot: Gradbot, openid: str) -> Student:
    student = Student(bot, openid)
    for text in ("实名认证", "同意", "1", "张三", "{id:430102:19990101:123}"):
        await student.send(text)
    assert "实名认证完成" in await student.send("确认")
    await student.send("关联学校")
    await student.send("湖南")
    assert await student.where() == "link_school/city"
    return student


async def test_redis_restarted_empty_mid_conversation(
    make_gradbot: GradbotFactory, settings: Settings, private_redis: PrivateRedis
) -> None:
    bot = await make_gradbot(settings.with_(redis_url=private_redis.url))
    student = await bound_and_linking(bot, "oFault_redis_restart01")
    private_redis.stop()
    assert BUSY in await timed(student, "长沙", "reply with Redis down (connection refused)")
    assert await ready(bot) == (503, {"redis": False, "database": True})
    assert "gradbot_busy_replies_total 1.0" in await (await bot.client.get("/metrics")).text()
    private_redis.start()  # empty: it has lost every session, dedup key and lock
    assert await ready(bot) == (200, {"redis": True, "database": True})
    again = await timed(student, "长沙", "first reply after Redis came back")
    assert BUSY not in again and await student.where() == "none"  # the half-done linking is forgotten
    assert "✓ 实名认证" in await student.send("进度")  # the binding is a SQL fact: not lost
    assert "张*" in await student.send("实名认证")  # the bind dialog starts from the stored binding
    assert await student.where() == "bind/bound"


async def test_redis_hung_gets_a_busy_reply_within_the_budget(
    make_gradbot: GradbotFactory, settings: Settings, private_redis: PrivateRedis
) -> None:
    # The hung Redis still runs the timed-out turn request once it wakes: that ghost holds the student's
    # turn until its lease runs out. A lease shorter than the reply budget shows the wait is bounded by it.
    bot = await make_gradbot(settings.with_(redis_url=private_redis.url, lock_lease_ms=2000))
    student = Student(bot, "oFault_redis_hung0001")
    await student.send("帮助")
    private_redis.pause()
    try:
        reply = await timed(student, "进度", "reply with Redis hung (SIGSTOP)")
        assert BUSY in reply
        status, body = await ready(bot)
        assert status == 503 and body["redis"] is False
    finally:
        private_redis.resume()
    assert "办理进度" in await timed(student, "进度", "first reply after Redis woke (behind the ghost turn)")
    assert bot.jobs.late == []


async def test_a_message_in_flight_when_redis_dies_is_answered_and_the_next_one_works(
    make_gradbot: GradbotFactory, settings: Settings, private_redis: PrivateRedis
) -> None:
    """Redis dies between the turn's start and its commit: the student still gets this step's reply,
    the SQL write of the step stands, and after the restart the conversation carries on from SQL."""
    bot = await make_gradbot(settings.with_(redis_url=private_redis.url))
    student = Student(bot, "oFault_redis_commit01")
    for text in ("实名认证", "同意", "1", "李四", "{id:430102:19990101:123}"):
        await student.send(text)
    services = bot.app[keys.SERVICES]
    original = services.actions.effects["save_binding"]

    async def save_then_lose_redis(effect, call):  # type: ignore[no-untyped-def]
        await original(effect, call)
        private_redis.stop()  # after the SQL commit, before the session commit

    services.actions.effects["save_binding"] = save_then_lose_redis
    try:
        assert "实名认证完成" in await student.send("确认")
    finally:
        services.actions.effects["save_binding"] = original
    private_redis.start()
    assert (await student.summary())["binding"]["name_masked"] == "李*"
    assert "✓ 实名认证" in await student.send("进度")
