"""``gradbot serve`` and ``gradbot worker`` end within seconds of SIGTERM, however long they sat idle.

Each command runs as a real subprocess on the test's Redis prefix. It idles past the longest wait
it keeps open (the notify ticker's 2 s sleep, the worker's 2 s ``XREADGROUP`` block, the 5 s socket
timeout of the console's Redis client) before the signal. Before the fix a stop took 1.3-6 s (serve)
and 0.2-2.4 s (worker), nearly all of it the interpreter's teardown after the app had closed
everything (docs/operations.md, "Stopping"). STOP_TEST_IDLE_S=120 repeats the check after a long idle.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Mapping

import pytest
import redis.asyncio as aioredis

from bot.config import Settings
from bot.jobs import JobQueue, build_broker
from bot.wechat.replies import OutMessage, dumps
from storage.base import IN_FLIGHT
from storage.keys import KeyBuilder
from tests.fixtures.services import free_port
from tests.fixtures.wechat import OPENID, StubHandle, gradbot_env

IDLE_S = float(os.environ.get("STOP_TEST_IDLE_S", "6"))
STOP_S = 2.0  # the promise in docs/operations.md
START_S = 60.0  # two spawned web processes on a busy 2-core machine
pytestmark = pytest.mark.timeout(START_S + IDLE_S + 60)


class Command:
    """``python -m bot.cli ARGS`` with its log (stderr) collected line by line as it runs."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, env: Mapping[str, str], *args: str) -> Command:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", *args, env=dict(env),
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def said(self, marker: str, times: int = 1, timeout: float = START_S) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(marker) < times:
            assert self.proc.returncode is None, f"exited with {self.proc.returncode}:\n{self.log[-3000:]}"
            assert time.monotonic() < deadline, f"never said {marker!r} {times}x:\n{self.log[-3000:]}"
            await asyncio.sleep(0.05)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Seconds from the signal until the process (and every process it started) is gone."""
        started = time.perf_counter()
        self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(asyncio.gather(self.proc.wait(), self._reader), 30)
        finally:
            await self.kill()
        return time.perf_counter() - started

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.wait({self._reader}, timeout=5)  # a child left behind would hold stderr open
        self._reader.cancel()


async def _stops_promptly_after_idling(command: Command, ready: str, times: int = 1) -> float:
    """Once it said ``ready`` (``times`` times), idle, then SIGTERM: it exits 0 within STOP_S. Returns the seconds."""
    try:
        await command.said(ready, times=times)
        await asyncio.sleep(IDLE_S)
        took = await command.stop()
    finally:
        await command.kill()
    assert command.proc.returncode == 0, command.log[-3000:]
    assert "Traceback" not in command.log
    assert took < STOP_S, command.log[-3000:]
    return took


async def test_serve_with_two_processes_stops_within_seconds_after_idling(
        settings: Settings, redis_client: aioredis.Redis) -> None:
    env = {**gradbot_env(settings), "GRADBOT_DATA_DIR": str(settings.data_dir)}
    serve = await Command.start(env, "serve", "--workers", "2", "--port", str(free_port()))
    took = await _stops_promptly_after_idling(serve, "gradbot listening", times=2)
    print(f"FIGURE gradbot serve --workers 2 stop after {IDLE_S:.0f} s idle: {took:.2f} s")
    assert serve.log.count("gradbot stopped in") == 2  # both processes closed their resources first
    # Full GC passes skip what start-up built (bot/commands/process.py freeze_heap): far more than a bare interpreter's.
    frozen = [int(n) for n in re.findall(r"(\d+) start-up objects frozen", serve.log)]
    assert len(frozen) == 2 and min(frozen) > 100_000, serve.log[-3000:]


async def test_worker_runs_on_uvloop_and_stops_within_seconds_after_idling(
        settings: Settings, redis_client: aioredis.Redis) -> None:
    worker = await Command.start(gradbot_env(settings), "worker")
    took = await _stops_promptly_after_idling(worker, "gradbot worker reading")
    print(f"FIGURE gradbot worker stop after {IDLE_S:.0f} s idle: {took:.2f} s")
    assert re.search(r"\(concurrency 16, uvloop, \d{5,} start-up objects frozen\)", worker.log), worker.log[-3000:]


async def test_a_stopped_worker_finishes_its_running_job_and_acks_it_before_exiting(
        settings: Settings, wechat_stub: StubHandle, redis_client: aioredis.Redis) -> None:
    stub_settings = settings.with_(wechat_api_base=wechat_stub.url)
    keys = KeyBuilder(stub_settings.redis_prefix, stub_settings.wechat_appid)
    jobs = JobQueue(build_broker(stub_settings, client=redis_client), redis_client, keys)
    await wechat_stub.interaction()
    reply_key = keys.dedup(OPENID, "stop1")
    await redis_client.set(reply_key, IN_FLIGHT)  # the late reply waits for this message's reply
    worker = await Command.start(gradbot_env(stub_settings), "worker")
    try:
        await worker.said("gradbot worker reading")
        await jobs.enqueue_late_reply(OPENID, "stop1", deadline_s=30)
        deadline = time.monotonic() + 20
        while int((await redis_client.xpending(keys.job_stream(), "gradbot"))["pending"]) < 1:
            assert time.monotonic() < deadline, "the worker never took the job"
            await asyncio.sleep(0.02)
        worker.proc.send_signal(signal.SIGTERM)  # mid-job: the reply is not committed yet
        await worker.said("stopping: finishing running jobs")
        await asyncio.sleep(0.5)
        assert worker.proc.returncode is None  # still waiting for its job
        await redis_client.set(reply_key, dumps([OutMessage.text("晚到的回复")]))
        await asyncio.wait_for(worker.proc.wait(), 20)
    finally:
        await worker.kill()
    assert worker.proc.returncode == 0, worker.log[-3000:]
    assert [m["payload"].get("content") for m in await wechat_stub.inbox()] == ["晚到的回复"]
    assert (await redis_client.xpending(keys.job_stream(), "gradbot"))["pending"] == 0  # acked
    assert await redis_client.xlen(keys.job_stream()) == 0
