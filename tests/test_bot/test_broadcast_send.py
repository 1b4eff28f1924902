"""Broadcasts end to end on both databases: the exact audience gets exactly one message each, WeChat's
refusals are handled by errcode, quota pauses and resumes, schedules wait, and a dead sender's
claimed batch is re-sent without a second copy reaching anyone."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest

from bot.console.state import CONSOLE
from bot.jobs import build_broker, running_worker
from bot.services.notify.broadcast import Draft, create
from bot.services.notify.limiter import RateLimiter
from bot.services.notify.runner import QUOTA, Runner
from bot.services.notify.slots import Slots
from bot.wechat.api import WeChatAPI
from storage.keys import KeyBuilder
from storage.sql import broadcasts, students, windows
from storage.sql.base import utcnow
from storage.sql.broadcasts import Progress
from storage.sql.stages import Audience
from tests.fixtures.console import (
    HANJIANG,
    PROCEDURE,
    PROCEDURE_TITLE,
    ConsoleFactory,
    ConsoleWorld,
    openid_for,
    seed_stages,
    seed_student,
)
from tests.fixtures.wechat import make_api

REMIND = {"message": "请在截止前完成照片采集"}
# Audience and crash recovery run on both backends (claims differ by dialect); the rest on PostgreSQL.
PG_ONLY = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)


async def start(world: ConsoleWorld, audience: Audience, *, rate: int = 200, send: bool = True,
                **draft: Any) -> int:
    console = world.app[CONSOLE]
    async with world.db.begin() as conn:
        made = await create(conn, Draft("test", "deadline_reminder", console.audience(audience), REMIND, rate=rate,
                                        **draft), console.templates, console.titles, actor="test", now=utcnow())
    if send:
        await console.start_broadcast(made.id)
    return made.id


async def progress(world: ConsoleWorld, broadcast_id: int) -> Progress:
    async with world.db.read() as conn:
        found = await broadcasts.progress(conn, broadcast_id)
    assert found is not None
    return found


async def until(world: ConsoleWorld, broadcast_id: int, *states: str, timeout: float = 40.0) -> Progress:
    deadline = asyncio.get_running_loop().time() + timeout
    while (p := await progress(world, broadcast_id)).state not in states:
        assert asyncio.get_running_loop().time() < deadline, p
        await asyncio.sleep(0.05)
    return p


async def templates_for(world: ConsoleWorld, openid: str) -> list[dict[str, Any]]:
    return [m for m in await world.stub.inbox(openid) if m["type"] == "template"]


async def many(world: ConsoleWorld, n: int, upto: str = "photo", tag: str = "m") -> list[str]:
    openids = [openid_for(i, tag) for i in range(n)]
    for openid in openids:
        await world.seed(openid, upto)
    return openids


async def test_the_audience_of_a_stage_gets_exactly_one_message_each(console_world: ConsoleWorld) -> None:
    world = console_world
    async with world.db.begin() as conn:
        at = await seed_stages(conn, world.pii)
        await windows.put(conn, procedure=PROCEDURE, school_code=HANJIANG.code, opens=date(2025, 3, 11),
                          closes=date(2025, 5, 5), actor="test")
    for step, openid in at.items():
        if step != "unfollowed":
            await world.stub.interaction(openid, "subscribe")
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_finished"))
    done = await until(world, bid, "done")
    expected = {"followed", "bound", "linked", "photo", "paid", "submitted", "rejected"}
    # Students without a school link are outside a school's audience.
    expected -= {"followed", "bound"}
    assert (done.total, done.sent, done.failed, done.pending) == (len(expected), len(expected), 0, 0)
    for step, openid in at.items():
        got = await templates_for(world, openid)
        assert len(got) == (1 if step in expected else 0), step
    [message] = await templates_for(world, at["rejected"])
    data = {k: v["value"] for k, v in message["payload"]["data"].items()}
    assert message["payload"]["template_id"] == "TPL_DEADLINE"
    assert data == {"thing1": PROCEDURE_TITLE, "time2": "2025-05-05", "thing3": REMIND["message"]}


@PG_ONLY
async def test_an_unfollowed_student_fails_with_43004_and_is_marked(make_console: ConsoleFactory) -> None:
    world = await make_console(broadcast_senders=1)
    openids = await many(world, 2)
    gone = openid_for(99, "gone")
    async with world.db.begin() as conn:  # follows in our records, but not at WeChat
        await seed_student(conn, world.pii, gone, "photo")
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"))
    done = await until(world, bid, "done")
    async with world.db.read() as conn:
        report = await broadcasts.report(conn, bid)
        student = await students.get(conn, gone)
    assert (done.total, report) == (3, {"failed": {"43004": 1}, "sent": {"0": 2}})
    assert student is not None and not student.following
    assert [len(await templates_for(world, o)) for o in openids] == [1, 1]


@PG_ONLY
async def test_a_bad_field_fails_one_message_and_busy_answers_are_retried(make_console: ConsoleFactory) -> None:
    world = await make_console(broadcast_senders=1)
    openids = await many(world, 6)
    await world.stub.faults(47003, count=1, paths=("message/template/send",))
    await world.stub.faults(-1, count=3, paths=("message/template/send",))  # outlasts the client's own retries
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"))
    done = await until(world, bid, "done")
    async with world.db.read() as conn:
        report = await broadcasts.report(conn, bid)
    assert (done.total, done.pending) == (6, 0)
    assert report == {"failed": {"47003": 1}, "sent": {"0": 5}}
    delivered = [len(await templates_for(world, o)) for o in openids]
    assert sorted(delivered) == [0, 1, 1, 1, 1, 1]  # the one refused with 47003 got nothing


@PG_ONLY
async def test_quota_pauses_the_broadcast_until_the_quota_returns(make_console: ConsoleFactory) -> None:
    world = await make_console(broadcast_senders=1)
    openids = await many(world, 8)
    await world.stub.faults(45009, count=1, paths=("message/template/send",))
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"), rate=5)
    paused = await until(world, bid, "paused")
    keys = KeyBuilder(world.settings.redis_prefix, world.settings.wechat_appid)
    limiter = RateLimiter(world.app[CONSOLE].redis, keys)
    assert paused.pending > 0 and await limiter.paused_for() > 3600
    async with world.db.read() as conn:
        found = await broadcasts.get(conn, bid)
    assert found is not None and found.reason == QUOTA
    await limiter.resume()  # the next China day
    done = await until(world, bid, "done")
    assert (done.sent, done.failed) == (8, 0)
    assert [len(await templates_for(world, o)) for o in openids] == [1] * 8


@PG_ONLY
async def test_the_daily_limit_stops_sending_and_keeps_the_rest_pending(make_console: ConsoleFactory) -> None:
    world = await make_console(broadcast_daily_limit=3, broadcast_senders=1)
    await many(world, 5)
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"))
    paused = await until(world, bid, "paused")
    assert (paused.total, paused.sent, paused.pending) == (5, 3, 2)


@PG_ONLY
async def test_a_scheduled_broadcast_waits_for_its_time(console_world: ConsoleWorld) -> None:
    world = console_world
    openids = await many(world, 3)
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"),
                      send_at=utcnow() + timedelta(hours=1))
    await asyncio.sleep(0.5)  # the senders are running and waiting
    assert (await progress(world, bid)).state == "scheduled"
    assert [await templates_for(world, o) for o in openids] == [[], [], []]
    async with world.db.begin() as conn:
        assert await broadcasts.reschedule(conn, bid, utcnow())
    done = await until(world, bid, "done")
    assert done.sent == 3


async def test_a_dead_senders_batch_is_resent_without_duplicates(make_console: ConsoleFactory) -> None:
    """A sender claimed a batch, sent part of it, and died before recording anything."""
    world = await make_console(worker=False, broadcast_lease_s=1.0)
    openids = await many(world, 20)
    bid = await start(world, Audience(school=HANJIANG.code, procedure=PROCEDURE, stage="not_paid"), send=False)
    async with aiohttp.ClientSession() as http:
        api = make_api(http, world.settings, world.app[CONSOLE].redis)
        dead = runner_for(world, api)
        async with world.db.read() as conn:
            b = await broadcasts.get(conn, bid)
        assert b is not None
        await dead._start(b, utcnow())
        async with world.db.begin() as conn:
            batch = await broadcasts.claim(conn, bid, worker="dead", limit=8, now=utcnow(), lease=timedelta(seconds=1))
        for row in batch[:5]:  # went out, then the process died: nothing recorded
            await api.send_template(row.openid, "TPL_DEADLINE", {"thing1": "x", "time2": "y", "thing3": "z"},
                                    client_msg_id=row.client_msg_id)
    async with running_worker(build_broker(world.settings, block_ms=50, poll=0.02)):  # a fresh worker
        await world.app[CONSOLE].start_broadcast(bid)
        done = await until(world, bid, "done")
    assert (done.total, done.sent, done.failed) == (20, 20, 0)
    assert [len(await templates_for(world, o)) for o in openids] == [1] * 20  # 0 duplicates, 0 missed
    assert (await world.stub.calls())["message/template/send"] == 25  # the 5 were sent again, and deduplicated


def runner_for(world: ConsoleWorld, api: WeChatAPI) -> Runner:
    console = world.app[CONSOLE]
    keys = KeyBuilder(world.settings.redis_prefix, world.settings.wechat_appid)

    async def no_kick(*_: Any) -> None:
        return None

    return Runner(api, world.db, RateLimiter(console.redis, keys), Slots(console.redis, keys), console.templates,
                  console.metrics, no_kick)
