"""The pipeline against its real neighbours: a private Redis watched with MONITOR, the real job
queue and worker, the WeChat stand-in's inbox."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.config import Settings
from bot.jobs import JobQueue, build_broker, running_worker
from bot.wechat.inbound import Inbound
from dialogs.spec import say
from handlers.base import Context, Outcome
from storage.keys import KeyBuilder
from tests.fixtures.app import Clock, GradbotFactory
from tests.fixtures.pay import eventually
from tests.fixtures.wechat import StubHandle

LATE = "oLateReply_Student_000000001"


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is needed on PATH for this test (apt-get install redis-server)")
    sock = tmp_path / "r.sock"
    proc = await asyncio.create_subprocess_exec(
        server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
        "--dir", str(tmp_path), stdout=asyncio.subprocess.DEVNULL)
    for _ in range(200):
        if sock.exists():
            break
        await asyncio.sleep(0.02)
    yield f"unix://{sock}"
    proc.terminate()
    await proc.wait()


async def test_an_uncontended_message_costs_two_redis_round_trips(
    make_gradbot: GradbotFactory, settings: Settings, private_redis: str
) -> None:
    bot = await make_gradbot(settings.with_(redis_url=private_redis))
    await bot.say("oRoundTrips", "帮助")  # warm-up: scripts loaded, pools open
    monitor = aioredis.Redis.from_url(private_redis)
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async with monitor.monitor() as m:
            async for command in m.listen():
                seen.append((str(command.get("client_type", "")), str(command.get("command", ""))))

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    await bot.say("oRoundTrips", "随便说点什么")
    await asyncio.sleep(0.2)
    watcher.cancel()
    await monitor.aclose()
    from_client = [c.split()[0].upper() for kind, c in seen if c and kind != "lua"]
    assert from_client == ["EVALSHA", "EVALSHA"], seen


async def test_a_reply_past_the_budget_reaches_the_student_by_customer_service_message(
    make_gradbot: GradbotFactory, settings: Settings, wechat_stub: StubHandle, redis_client: aioredis.Redis
) -> None:
    async def slow(inbound: Inbound, ctx: Context) -> Outcome:
        await asyncio.sleep(0.8)
        return Outcome([say("common/help")])

    s = settings.with_(wechat_api_base=wechat_stub.url, reply_budget=0.3)
    jobs = JobQueue(build_broker(s, client=redis_client), redis_client, KeyBuilder(s.redis_prefix, s.wechat_appid))
    async with running_worker(build_broker(s, reclaim_after=0.3, block_ms=50, poll=0.02, rounds=(0.0,))):
        bot = await make_gradbot(s, clock=Clock(time.time()), jobs=jobs, dispatch=slow)
        await wechat_stub.interaction(LATE)
        resp = await bot.post_xml(bot.wechat.text_xml(LATE, "帮助"), LATE)
        assert await resp.text() == "success"

        async def delivered() -> bool:
            return any("实名认证" in str(m["payload"]) for m in await wechat_stub.inbox(LATE))

        await eventually(delivered)
    metrics = await (await bot.client.get("/metrics")).text()
    assert "gradbot_deferred_replies_total 1.0" in metrics
