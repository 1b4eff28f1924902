"""Seed 002 end to end: 长沙理工大学's degree foreign-language exam registration, through HTTP.

start → (binding, school linking) → notice → ID card both sides as images → subject → 已毕业 with a
thesis grade → confirm → exam fee at the sandbox cashier → waiting for the admission ticket →
a change inside the window (no second payment) → the ticket PDF on its release day. Also: a thesis
grade below 中 is refused with the reason; after the window a change is refused.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot import keys
from storage.sql.tables import orders
from tests.fixtures.procedure import World, WorldFactory, china_time
from tests.fixtures.seed_steps import bind, fetch, link, pdf_first_page_png, pdf_text, send_scan, url_in

NAME = "csust_degree_english"
LINK = ("湖南", "长沙", "长沙理工大学", "1", "2")


async def _orders(world: World, openid: str) -> list[tuple[str, str]]:
    async with world.gradbot.app[keys.SERVICES].db.read() as conn:
        rows = await conn.execute(sa.select(orders.c.item, orders.c.state).where(orders.c.openid == openid))
        return [(r.item, r.state) for r in rows]


async def _to_subject(world: World, openid: str):  # type: ignore[no-untyped-def]
    student = world.student(openid)
    await world.stub.interaction(openid)
    reply = await student.send("学位外语报名")
    assert await student.where() == "bind/consent", student.dump()
    await bind(student)
    reply = await link(student, LINK, "2021级 学位外语")
    assert "学位外语考试报名" in reply and "我已阅读并了解" in reply, student.dump()
    reply = await student.send("同意")
    assert "身份证" in reply and "好" in reply
    reply = await student.send("好")
    assert "人像面" in reply and "4MB" in reply
    reply = await send_scan(world, student, 1)
    assert "已收到「身份证 人像面」" in reply and "国徽面" in reply, student.dump()
    reply = await student.send("跳过")
    assert "必交材料" in reply and await student.where() == f"{NAME}/idcard__card2"
    reply = await send_scan(world, student, 2)
    assert "考试科目" in reply, student.dump()
    return student


async def test_seed_002_register_change_without_paying_twice_and_get_the_ticket(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2024-09-10T10:00:00"))
    openid = "oCsust_Student_0000000000001"
    student = await _to_subject(world, openid)
    await student.send("1")  # 英语
    reply = await student.send("2")  # 已毕业
    assert "论文" in reply
    reply = await student.send("2")  # 良
    assert "论文成绩：良" in reply and "英语" in reply, student.dump()
    reply = await student.send("确认")
    assert "[news]" in reply and "100.00" in reply, student.dump()
    await world.pay(url_in(reply, "/pay/"), openid, "degree_exam_fee")
    await world.wait_inbox(openid, "2024-10-20")
    assert await student.where() == f"{NAME}/ticket__wait"

    reply = await student.send("修改")  # inside the window: change the subject and status
    assert await student.where() == f"{NAME}/subject", student.dump()
    await student.send("2")  # 日语
    reply = await student.send("1")  # 在籍: the thesis question is skipped and its old answer dropped
    assert "日语" in reply and "在籍" in reply and "论文" not in reply, student.dump()
    reply = await student.send("返回")  # back over the skipped question, to the one asked
    assert "在籍还是已毕业" in reply and await student.where() == f"{NAME}/status", student.dump()
    await student.send("1")
    reply = await student.send("确认")
    assert "不用重复支付" in reply and "2024-10-20" in reply, student.dump()
    assert await student.where() == f"{NAME}/ticket__wait"
    assert await _orders(world, openid) == [("degree_exam_fee", "paid")]  # one order, paid once

    world.gradbot.clock.now = china_time("2024-10-21T09:00:00")  # released; the window has closed
    reply = await student.send("在吗")  # weeks later: first the question whether to carry on
    assert "回复 1 继续" in reply
    await student.send("1")
    reply = await student.send("修改")
    assert "已过报名时间" in reply and "/docs/" in reply, student.dump()
    assert await student.where() == "none"
    status, ctype, pdf = await fetch(world, url_in(reply, "/docs/"))
    assert status == 200 and ctype == "application/pdf"
    text = pdf_text(pdf)
    assert "学士学位外语考试准考证" in text and "日语" in text and "在籍" in text and "长沙理工大学" in text
    assert "陈**" in text and "陈小明" not in text  # masked: the clear name is for the verifier only
    width, height, ink = pdf_first_page_png(pdf)
    assert height > width and 0.005 < ink < 0.3  # an A4 portrait page with something printed on it

    reply = await student.send("学位外语报名")  # finished: asking again hands out a fresh link
    assert "/docs/" in reply and "报名完成" in reply, student.dump()


async def test_a_thesis_grade_below_medium_is_refused_with_the_reason(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2024-09-10T10:00:00"))
    student = await _to_subject(world, "oCsust_Pass_00000000000001")
    await student.send("1")
    await student.send("2")
    reply = await student.send("4")  # 及格
    assert "中" in reply and "才能报名" in reply and await student.where() == "none", student.dump()
