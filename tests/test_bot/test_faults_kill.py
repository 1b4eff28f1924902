"""A ``gradbot serve`` process killed (SIGKILL) while it holds a student's turn.

The process is caught mid-step: its SQL write waits on a SQLite lock the test holds. After the kill
the student's next message, handled by another process, waits at most the lock lease for the dead
turn and is answered normally; the dead step wrote nothing. (Jobs in flight on a killed *worker*:
tests/test_bot/test_jobs.py::test_a_killed_worker_process_loses_no_job.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import aiohttp
import redis.asyncio as aioredis
import sqlalchemy as sa

from bot import keys
from bot.config import Settings
from storage.keys import KeyBuilder
from storage.sql.tables import audit_log
from tests.fixtures.app import GradbotFactory
from tests.fixtures.conversation import Student
from tests.fixtures.pay import eventually
from tests.fixtures.services import free_port
from tests.fixtures.wechat import gradbot_env

LEASE_MS = 3000  # below the 4.5 s reply budget, so the wait for a dead turn fits in one callback


async def test_a_killed_process_blocks_its_student_no_longer_than_the_lease(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    s = settings.with_(lock_lease_ms=LEASE_MS)
    survivor = await make_gradbot(s, clock=time.time)  # real time: the other process signs and steps with it
    student = Student(survivor, "oFault_killed_0001")
    await student.send("实名认证")
    port = free_port()
    env = {**gradbot_env(s), "GRADBOT_DATA_DIR": str(s.data_dir), "GRADBOT_WECHAT_TOKEN": s.wechat_token,
           "GRADBOT_LOCK_LEASE_MS": str(LEASE_MS)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lock = sqlite3.connect(s.data_dir / "gradbot.sqlite3", isolation_level=None, timeout=30)
    try:
        await _wait_healthy(port)
        lock.execute("BEGIN IMMEDIATE")  # the killed process's write will wait on this
        ticket = KeyBuilder(s.redis_prefix, s.wechat_appid).ticket(student.openid)
        before = int(await redis_client.get(ticket) or 0)
        query, body = survivor.wechat.sign(survivor.wechat.text_xml(student.openid, "同意"), student.openid)
        async with aiohttp.ClientSession() as http:
            pending = asyncio.ensure_future(http.post(f"http://127.0.0.1:{port}/wechat?{query}", data=body))

            async def turn_taken() -> bool:
                return int(await redis_client.get(ticket) or 0) > before
            await eventually(turn_taken)
            proc.kill()
            await proc.wait()
            await asyncio.gather(pending, return_exceptions=True)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        lock.execute("ROLLBACK") if lock.in_transaction else None
        lock.close()
    assert proc.returncode == -9
    started = time.perf_counter()
    reply = await student.send("同意")  # the student sends it again: the dead turn is skipped after its lease
    print(f"FIGURE reply behind a SIGKILLed holder (lease {LEASE_MS} ms): {time.perf_counter() - started:.3f} s")
    assert "1 居民身份证" in reply and await student.where() == "bind/choose_type"
    async with survivor.app[keys.SERVICES].db.read() as conn:
        consents = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == "privacy.consent", audit_log.c.openid == student.openid))).scalar_one()
    assert consents == 1  # the killed step committed nothing


async def _wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        async def up() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False
        await eventually(up, timeout=40)
