"""Background jobs on real Redis Streams, sending to the WeChat stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.cli import main
from bot.config import Settings
from bot.jobs import CLAIMED, LATE_REPLY, MAX_RUNS, SEND_CS, SENT, JobQueue, build_broker, running_worker
from bot.local_jobs import LocalJobQueue
from bot.metrics import Metrics
from bot.render import Renderer
from bot.tasks import TaskSet
from bot.wechat.replies import OutMessage, dumps
from storage.base import IN_FLIGHT
from storage.keys import KeyBuilder
from storage.memory import MemorySessionStore
from tests.fixtures.services import free_port
from tests.fixtures.wechat import OPENID, StubHandle, gradbot_env

TEXTS = [OutMessage.text(f"第{i}步") for i in range(1, 4)]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (a job ran); fail if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


def outcomes(metrics: Metrics, outcome: str) -> float:
    return float(metrics.notifications.labels(kind="cs", outcome=outcome)._value.get())


async def contents(stub: StubHandle) -> list[str]:
    return [m["payload"].get("content", m["type"]) for m in await stub.inbox()]


def has(stub: StubHandle, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await stub.inbox()) >= n
    return check


@pytest.fixture
def stub_settings(settings: Settings, wechat_stub: StubHandle) -> Settings:
    return settings.with_(wechat_api_base=wechat_stub.url)


@pytest.fixture
def keys(stub_settings: Settings) -> KeyBuilder:
    return KeyBuilder(stub_settings.redis_prefix, stub_settings.wechat_appid)


@pytest.fixture
def jobs(stub_settings: Settings, redis_client: aioredis.Redis, keys: KeyBuilder) -> JobQueue:
    return JobQueue(build_broker(stub_settings, client=redis_client), redis_client, keys)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def worker(stub_settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
    broker = build_broker(stub_settings, reclaim_after=0.3, block_ms=50, poll=0.02, rounds=(0.0,),
                          metrics=metrics)
    async with running_worker(broker):
        yield


async def kick(jobs: JobQueue, task_name: str, **kwargs: Any) -> None:
    """Queue a job directly, past JobQueue's enqueue dedup: what a redelivery looks like to the job."""
    task = jobs.broker.find_task(task_name)
    assert task is not None
    await task.kiq(**kwargs)


# -- customer-service sends -------------------------------------------------------------------

async def test_cs_messages_are_sent_in_order_and_queued_once(jobs: JobQueue, worker: None,
                                                             wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    assert await jobs.enqueue_cs(OPENID, TEXTS, "msg-1") is True
    assert await jobs.enqueue_cs(OPENID, TEXTS, "msg-1") is False  # WeChat's retry of the same message
    await eventually(has(wechat_stub, 3))
    assert await contents(wechat_stub) == ["第1步", "第2步", "第3步"]
    assert await jobs.enqueue_cs(OPENID, [], "msg-2") is False


async def test_a_rerun_sends_nothing_twice(jobs: JobQueue, worker: None, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    payload = [m.to_dict() for m in TEXTS]
    await kick(jobs, SEND_CS, openid=OPENID, messages=payload, idem_key="dup")
    await eventually(has(wechat_stub, 3))
    await kick(jobs, SEND_CS, openid=OPENID, messages=[*payload, OutMessage.text("补充").to_dict()],
               idem_key="dup")
    await eventually(has(wechat_stub, 4))
    assert await contents(wechat_stub) == ["第1步", "第2步", "第3步", "补充"]


async def test_closed_window_sends_nothing_and_releases_the_claims(jobs: JobQueue, worker: None, metrics: Metrics,
                                                                   wechat_stub: StubHandle) -> None:
    payload = [m.to_dict() for m in TEXTS]
    await kick(jobs, SEND_CS, openid=OPENID, messages=payload, idem_key="closed")

    async def failed() -> bool:
        return outcomes(metrics, "failed") == 1

    await eventually(failed)
    assert await wechat_stub.inbox() == []
    await wechat_stub.interaction()  # the student writes again: a re-run may now deliver
    await kick(jobs, SEND_CS, openid=OPENID, messages=payload, idem_key="closed")
    await eventually(has(wechat_stub, 3))


async def test_response_limit_stops_the_job(jobs: JobQueue, worker: None, metrics: Metrics,
                                            wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    six = [OutMessage.text(str(i)) for i in range(6)]
    await jobs.enqueue_cs(OPENID, six, "six")

    async def stopped() -> bool:
        return outcomes(metrics, "failed") == 1

    await eventually(stopped)
    assert await contents(wechat_stub) == ["0", "1", "2", "3", "4"]


async def test_system_busy_beyond_the_client_retries_is_retried_by_the_job(
        jobs: JobQueue, worker: None, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await wechat_stub.faults(-1, count=4, paths=("message/custom/send",))
    await jobs.enqueue_cs(OPENID, TEXTS[:1], "busy")
    await eventually(has(wechat_stub, 1))
    assert (await wechat_stub.calls())["message/custom/send"] == 5


async def test_a_message_another_run_is_sending_holds_the_rest_back(
        jobs: JobQueue, worker: None, metrics: Metrics, redis_client: aioredis.Redis, keys: KeyBuilder,
        wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await redis_client.set(keys.cs_sent(OPENID, "cs:held", 0), CLAIMED)
    await redis_client.set(keys.cs_sent(OPENID, "cs:done", 0), SENT)
    await jobs.enqueue_cs(OPENID, TEXTS, "held")
    await jobs.enqueue_cs(OPENID, TEXTS, "done")
    await eventually(has(wechat_stub, 2))
    assert await contents(wechat_stub) == ["第2步", "第3步"]  # "held" sent nothing, "done" skipped its first


async def test_a_job_that_keeps_crashing_is_dropped(jobs: JobQueue, worker: None, metrics: Metrics,
                                                    redis_client: aioredis.Redis, keys: KeyBuilder,
                                                    wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await redis_client.set(keys.job_runs(OPENID, "cs:poison"), MAX_RUNS)
    await jobs.enqueue_cs(OPENID, TEXTS, "poison")

    async def dropped() -> bool:
        return outcomes(metrics, "dropped") == 1

    await eventually(dropped)
    assert await wechat_stub.inbox() == []


# -- late replies -----------------------------------------------------------------------------

async def test_late_reply_is_sent_once_committed(jobs: JobQueue, worker: None, redis_client: aioredis.Redis,
                                                 keys: KeyBuilder, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    reply_key = keys.dedup(OPENID, "m42")
    await redis_client.set(reply_key, IN_FLIGHT)
    assert await jobs.enqueue_late_reply(OPENID, "m42", deadline_s=20) is True
    assert await jobs.enqueue_late_reply(OPENID, "m42", deadline_s=20) is False
    await asyncio.sleep(0.2)  # the job is polling the in-flight marker
    assert await wechat_stub.inbox() == []
    await redis_client.set(reply_key, dumps(TEXTS[:2]))
    await eventually(has(wechat_stub, 2))
    assert await contents(wechat_stub) == ["第1步", "第2步"]


async def test_late_reply_past_the_deadline_apologises(jobs: JobQueue, worker: None, redis_client: aioredis.Redis,
                                                       keys: KeyBuilder, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await redis_client.set(keys.dedup(OPENID, "slow"), IN_FLIGHT)
    await jobs.enqueue_late_reply(OPENID, "slow", deadline_s=0.2)
    await eventually(has(wechat_stub, 1))
    apology = Renderer().render("common/late_reply_failed")
    assert await contents(wechat_stub) == [apology]
    assert "再发一次" in apology


async def test_unreadable_reply_gets_the_apology(jobs: JobQueue, worker: None, redis_client: aioredis.Redis,
                                                 keys: KeyBuilder, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await redis_client.set(keys.dedup(OPENID, "bad"), b"{not json")
    await jobs.enqueue_late_reply(OPENID, "bad", deadline_s=5)
    await eventually(has(wechat_stub, 1))
    assert await contents(wechat_stub) == [Renderer().render("common/late_reply_failed")]


# -- durability -------------------------------------------------------------------------------

async def test_job_held_by_a_dead_worker_is_run_by_another(jobs: JobQueue, stub_settings: Settings,
                                                           redis_client: aioredis.Redis, keys: KeyBuilder,
                                                           wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await redis_client.set(keys.dedup(OPENID, "m7"), dumps(TEXTS[:1]))
    await jobs.enqueue_late_reply(OPENID, "m7", deadline_s=5)
    # A worker takes the job and dies before acking: the entry stays pending under its name.
    await redis_client.xgroup_create(keys.job_stream(), "gradbot", id="0", mkstream=True)
    taken: Any = await redis_client.xreadgroup("gradbot", "dead-worker", {keys.job_stream(): ">"}, count=1)
    assert len(taken[0][1]) == 1
    broker = build_broker(stub_settings, reclaim_after=0.3, block_ms=50, poll=0.02)
    async with running_worker(broker):
        await eventually(has(wechat_stub, 1))
    assert await contents(wechat_stub) == ["第1步"]
    assert (await redis_client.xpending(keys.job_stream(), "gradbot"))["pending"] == 0
    assert await redis_client.xlen(keys.job_stream()) == 0  # acked entries are deleted


async def test_a_killed_worker_process_loses_no_job(jobs: JobQueue, stub_settings: Settings,
                                                   redis_client: aioredis.Redis, keys: KeyBuilder,
                                                   wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    reply_key = keys.dedup(OPENID, "k1")
    await redis_client.set(reply_key, IN_FLIGHT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "worker", env=gradbot_env(stub_settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await jobs.enqueue_late_reply(OPENID, "k1", deadline_s=30)

        async def taken() -> bool:
            assert proc.returncode is None, "the worker process exited on its own"
            try:
                return int((await redis_client.xpending(keys.job_stream(), "gradbot"))["pending"]) == 1
            except ResponseError:  # the worker has not created the consumer group yet
                return False

        await eventually(taken, timeout=40)
    finally:
        if proc.returncode is None:
            proc.kill()  # SIGKILL mid-job: no shutdown handler runs, no ack is sent
        _, err = await proc.communicate()
    assert proc.returncode == -9, err.decode()[-2000:]
    await redis_client.set(reply_key, dumps(TEXTS[:2]))
    broker = build_broker(stub_settings, reclaim_after=0.3, block_ms=50, poll=0.02)
    async with running_worker(broker):
        await eventually(has(wechat_stub, 2))
    assert await contents(wechat_stub) == ["第1步", "第2步"]


def test_worker_needs_redis(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADBOT_REDIS_URL", "memory://")
    assert main(["worker"]) == 2
    assert "needs redis://" in capsys.readouterr().err


def test_worker_without_redis_exits_with_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADBOT_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert "unavailable" in err and "Traceback" not in err


async def test_jobs_queued_before_any_worker_existed_are_run(jobs: JobQueue, stub_settings: Settings,
                                                             wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await jobs.enqueue_cs(OPENID, TEXTS[:1], "early")
    broker = build_broker(stub_settings, block_ms=50)
    async with running_worker(broker):
        await eventually(has(wechat_stub, 1))


async def test_listener_stops_once_cancelled_even_if_the_cancel_was_swallowed(stub_settings: Settings) -> None:
    # Regression: about once in 150 worker stops the receiver's cancel landed inside a redis-py
    # command that then returned normally; the listener read on forever and the worker never stopped.
    broker = build_broker(stub_settings, block_ms=20)
    await broker.startup()

    async def consume() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as inside redis-py
            await asyncio.sleep(0)
        async for _ in broker.listen():
            pass

    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.create_task(consume()), 10)
    finally:
        await broker.shutdown()


async def test_late_reply_task_name_is_stable() -> None:
    # Queued jobs outlive deploys: renaming a task strands every job queued under the old name.
    assert (SEND_CS, LATE_REPLY) == ("gradbot.send_cs_messages", "gradbot.deliver_late_reply")


# -- memory:// demo ---------------------------------------------------------------------------

async def test_local_queue_delivers_in_process(stub_settings: Settings, wechat_stub: StubHandle) -> None:
    store = MemorySessionStore(session_ttl=60, dedup_ttl=60)
    tasks = TaskSet()
    local = JobQueue.for_web(stub_settings.with_(redis_url="memory://"), None, store, tasks)
    assert isinstance(local, LocalJobQueue)
    await wechat_stub.interaction()
    begin = await store.begin(OPENID, "m1", wait=1)
    assert begin.turn is not None
    assert await local.enqueue_late_reply(OPENID, "m1", deadline_s=5) is True
    assert await local.enqueue_late_reply(OPENID, "m1", deadline_s=5) is False
    await store.commit(begin.turn, None, dumps(TEXTS[:1]))
    assert await local.enqueue_cs(OPENID, TEXTS[1:], "m1") is True
    await tasks.drain(10)
    assert sorted(await contents(wechat_stub)) == sorted(["第1步", "第2步", "第3步"])
