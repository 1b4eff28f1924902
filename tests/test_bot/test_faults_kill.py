"""A ``gradbot serve`` process killed (SIGKILL) while it holds a student's turn.

The process is caught mid-step: its SQL write waits on a SQLite lock the test holds. After the kill
the student's next message, handled by another process, waits at most the lock lease for the dead
turn and is answered normally; the dead step wrote nothing. WeChat's retry of the killed message
itself is handled again once the dead turn's lease has run out. (Jobs in flight on a killed *worker*:
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
from tests.fixtures.app import Gradbot, GradbotFactory
from tests.fixtures.conversation import Student
from tests.fixtures.pay import eventually
from tests.fixtures.services import free_port
from tests.fixtures.wechat import gradbot_env

LEASE_MS = 3000  # below the 4.5 s reply budget, so the wait for a dead turn fits in one callback


async def test_a_killed_process_blocks_its_student_no_longer_than_the_lease(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    survivor, student = await _killed_mid_step(make_gradbot, settings, redis_client, "oFault_killed_0001")
    started = time.perf_counter()
    reply = await student.send("同意")  # the student sends it again: the dead turn is skipped after its lease
    print(f"FIGURE reply behind a SIGKILLed holder (lease {LEASE_MS} ms): {time.perf_counter() - started:.3f} s")
    assert "1 居民身份证" in reply and await student.where() == "bind/choose_type"
    assert await _consents(survivor, student) == 1  # the killed step committed nothing


async def test_wechats_retry_of_the_killed_message_is_answered_once_the_lease_ran_out(
    make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis
) -> None:
    survivor, student = await _killed_mid_step(make_gradbot, settings, redis_client, "oFault_killed_0002")
    await asyncio.sleep(LEASE_MS / 1000 + 0.2)  # WeChat retries after 5 and 10 s, past the 3 s lease
    retry = await survivor.say(student.openid, "同意", KILLED_MSG_ID)  # same MsgId: the same message
    assert retry is not None and "1 居民身份证" in retry["Content"]  # handled, not an empty answer
    assert await student.where() == "bind/choose_type"
    again = await survivor.say(student.openid, "同意", KILLED_MSG_ID)  # a later retry gets the same reply
    assert again == retry and await _consents(survivor, student) == 1  # run once: the killed step wrote nothing


KILLED_MSG_ID = 7_700_000_000_000_000_001


async def _killed_mid_step(make_gradbot: GradbotFactory, settings: Settings, redis_client: aioredis.Redis,
                           openid: str) -> tuple[Gradbot, Student]:
    """A bound-to-be student whose 同意 (MsgId ``KILLED_MSG_ID``) was being handled by a process that
    was then SIGKILLed: its SQL write was waiting on a SQLite lock the test held."""
    s = settings.with_(lock_lease_ms=LEASE_MS)
    survivor = await make_gradbot(s, clock=time.time)  # real time: the other process signs and steps with it
    student = Student(survivor, openid)
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
        xml = survivor.wechat.text_xml(student.openid, "同意", KILLED_MSG_ID)
        query, body = survivor.wechat.sign(xml, student.openid)
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
    return survivor, student


async def _consents(bot: Gradbot, student: Student) -> int:
    async with bot.app[keys.SERVICES].db.read() as conn:
        found: int = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == "privacy.consent", audit_log.c.openid == student.openid))).scalar_one()
    return found


async def _wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        async def up() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False
        await eventually(up, timeout=40)
