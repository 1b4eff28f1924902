"""PostgreSQL lost mid-run (a cut TCP link): callbacks answer politely, readiness fails, payment
notifications are refused until the database is back, then applied once; nothing is acknowledged early."""

from __future__ import annotations

import json

from bot.config import Settings
from storage.sql.crypto import generate_key
from tests.fixtures.app import GradbotFactory
from tests.fixtures.conversation import Student
from tests.fixtures.faults import TcpProxy
from tests.fixtures.pay import STUDENT, PayWorldFactory, eventually
from tests.test_bot.test_faults_redis import BUSY, ready, timed


def url(proxy: TcpProxy, schema: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test?search_path={schema}"


async def test_callbacks_stay_polite_while_the_database_is_gone(
    make_gradbot: GradbotFactory, settings: Settings, pg_proxy: TcpProxy, pg_schema: str
) -> None:
    bot = await make_gradbot(settings.with_(database_url=url(pg_proxy, pg_schema), data_key=generate_key()))
    student = Student(bot, "oFault_db_student01")
    for text in ("实名认证", "同意", "1", "王五", "{id:430102:19990101:123}"):
        await student.send(text)
    await pg_proxy.cut()
    reply = await timed(student, "确认", "reply with the database gone")
    assert BUSY in reply  # the binding could not be saved, and the student is told to try again
    assert await student.where() == "bind/confirm"  # the position is kept for the retry
    assert await ready(bot) == (503, {"redis": True, "database": False})
    await pg_proxy.open()
    assert "实名认证完成" in await student.send("确认")
    assert (await student.summary())["binding"]["name_masked"] == "王*"
    assert await ready(bot) == (200, {"redis": True, "database": True})


async def test_payment_notifications_are_refused_until_the_database_is_back(
    make_pay_world: PayWorldFactory, pg_proxy: TcpProxy, pg_schema: str
) -> None:
    world = await make_pay_world(database_url=url(pg_proxy, pg_schema))
    await world.sandbox.post("switches", {"hold": True})
    link = world.link()
    await world.sign_in(STUDENT)
    await world.open_in_wechat(link)
    await world.bridge((await world.prepay(link))[1])
    no = (await world.order_of()).out_trade_no
    await pg_proxy.cut()
    await world.sandbox.post("release", {"order": "fifo"})

    async def refused_twice() -> bool:
        return sum(a["status"] == 500 for a in await world.sandbox.attempts(no)) >= 2
    await eventually(refused_twice)
    await pg_proxy.open()
    order = await world.wait_state(no, "paid")

    async def acknowledged() -> bool:  # gradbot commits before it answers: the sandbox logs the 204 just after
        return any(a["status"] in (200, 204) for a in await world.sandbox.attempts(no))
    await eventually(acknowledged)
    statuses = [a["status"] for a in await world.sandbox.attempts(no)]
    assert statuses[-1] in (200, 204) and set(statuses[:-1]) == {500}  # acknowledged once, after the outage
    assert [e.to_state for e in await world.events(no)] == ["created", "paid"] and order.transaction_id
    print("FIGURE pay notify attempts before the database came back:", json.dumps(statuses))
