"""Seed 004 end to end: 山西's self-taught exam graduation application, through HTTP.

start → (binding) → notice → ID photos → exam number, county, address, two 主考院校, 本科 with the
prior diploma number → substitutes for 英语（二） (refused below 14 credits) → old-plan courses with a
zip of scans on the upload page → submit (locked: no back, no cancel) → graduation photo → county
review → pay only after approval → registration form data → the form PDF, two copies → done.
Also: a rejection allows one re-application, the second rejection closes it; the upload page
answers bad uploads and bad links with the right status codes.
"""

from __future__ import annotations

import io
import zipfile

import aiohttp
import sqlalchemy as sa

from bot import keys
from storage.sql.tables import orders
from tests.fixtures.conversation import Student
from tests.fixtures.pay import eventually
from tests.fixtures.photos import jpeg, studio
from tests.fixtures.procedure import World, WorldFactory, china_time
from tests.fixtures.seed_steps import (
    bind,
    fetch,
    links_in_inbox,
    pdf_pages,
    pdf_text,
    review_again,
    send_scan,
    url_in,
)

NAME = "shanxi_zikao_graduation"


async def _answer(student: Student, *answers: str) -> str:
    reply = ""
    for answer in answers:
        reply = await student.send(answer)
    return reply


async def _start(world: World, openid: str) -> Student:
    student = world.student(openid)
    await world.stub.interaction(openid)
    await student.send("自考毕业申请")
    reply = await bind(student)
    assert "山西自考毕业申请" in reply and "重新申请1次" in reply, student.dump()
    await _answer(student, "同意", "好")
    await send_scan(world, student, 1)
    reply = await send_scan(world, student, 2)
    assert "准考证号" in reply, student.dump()
    assert "12位数字" in await student.send("12345")
    await _answer(student, "141234567890", "小店区", "太原市小店区学府街100号")
    return student


async def _photo_and_review(world: World, student: Student) -> None:
    reply = await student.image(await world.photo(jpeg(studio())))
    assert "✅ 合格" in reply and await student.where() == f"{NAME}/county_review__wait", student.dump()


async def _zip_upload(world: World, url: str, body: bytes, filename: str = "scans.zip") -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(body), filename=filename, content_type="application/zip")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    resp = await world.gradbot.client.post(path, data=form)
    return resp.status, await resp.text()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("课程1.jpg", b"\xff\xd8scan")
    return buf.getvalue()


async def _orders(world: World, openid: str) -> list[str]:
    async with world.gradbot.app[keys.SERVICES].db.read() as conn:
        rows = await conn.execute(sa.select(orders.c.item).where(orders.c.openid == openid))
        return [r.item for r in rows]


async def test_seed_004_graduation_application_to_the_registration_form(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-10T10:00:00"))
    openid = "oShanxi_Student_00000000001"
    student = await _start(world, openid)
    reply = await _answer(student, "1", "3", "2", "汉语言文学")  # 山西大学, 太原理工大学, 本科
    assert "前置学历" in reply, student.dump()
    reply = await _answer(student, "1234567890abcd", "2")  # the diploma number, then: substitutes needed
    assert "高等数学（工本）（4学分）" in reply and "不少于14学分" in reply, student.dump()
    reply = await student.send("1 3 4")  # 4 + 5 + 4 = 13
    assert "共13学分，还差1学分" in reply and await student.where() == f"{NAME}/substitute"
    reply = await _answer(student, "1 2 3 5", "2", "毛泽东思想概论、中国近现代史纲要", "好")
    assert "/upload/" in reply and "ZIP" in reply, student.dump()
    upload = url_in(reply, "/upload/")

    assert (await _zip_upload(world, upload, b"not a zip at all"))[0] == 415  # more in test_procedure_web
    assert "还没有收到" in await student.send("已上传")
    status, page = await _zip_upload(world, upload, _zip())
    assert status == 200 and "上传成功" in page

    async def moved_on() -> bool:
        return await student.where() == f"{NAME}/submit"
    await eventually(moved_on)
    await world.wait_inbox(openid, "已收到「旧计划课程扫描件压缩包」")
    reply = await student.send("你好")
    assert "高等数学（工本）、线性代数（经管类）、概率论与数理统计（经管类）、管理系统中计算机应用（16学分）" in reply
    assert "山西大学、太原理工大学" in reply and "提交后不能再修改" in reply, student.dump()
    reply = await student.send("确认")
    assert "申请已提交" in reply and "毕业证书用的照片" in reply, student.dump()
    assert "不能返回" in await student.send("返回")
    assert "不能取消" in await student.send("取消") and await student.where() == f"{NAME}/photo"
    await _photo_and_review(world, student)
    assert await _orders(world, openid) == []  # no payment before the county office approves

    said = await world.review(openid, "review_approved", procedure=NAME)
    assert any("支付 50.00 元" in s for s in said), said  # approved: now, and only now, the fee
    reply = await student.send("付款链接呢")
    assert "还没有收到付款" in reply, student.dump()
    await world.pay(url_in(reply, "/pay/"), openid, "graduation_fee")
    await world.wait_inbox(openid, "政治面貌")
    reply = await _answer(student, "2", "无", "2015.09–2018.06 太原市第五中学 学生\n2018.07–至今 自由职业")
    assert "自我鉴定" in reply
    reply = await student.send("跳过")  # handwritten after printing
    assert "毕业生登记表" in reply and "/docs/" in reply and "2份" in reply, student.dump()
    status, ctype, pdf = await fetch(world, url_in(reply, "/docs/"))
    text = pdf_text(pdf)
    assert status == 200 and ctype == "application/pdf" and pdf_pages(pdf) == 2
    assert text.count("高等教育自学考试毕业生登记表") == 2 and "第一份" in text and "第二份" in text
    for expected in ("141234567890", "汉语言文学（本科）", "山西大学、太原理工大学", "小店区", "共青团员",
                     "太原市第五中学", "本人手写"):
        assert expected in text, expected
    reply = await student.send("自考毕业申请")  # done: a fresh link to the form, nothing re-applied
    assert "/docs/" in reply and "交回所选县" in reply and await student.where() == "none"
    assert await _orders(world, openid) == ["graduation_fee"]


async def test_one_re_application_after_a_rejection_then_it_is_closed(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-10T10:00:00"))
    openid = "oShanxi_Rejected_0000000001"
    student = await _start(world, openid)
    short = ("1", "1", "1", "汉语言文学", "1", "确认")  # 山西大学, no second, 专科, no old-plan courses
    reply = await _answer(student, *short)
    assert "顶替英语" not in student.dump() and "毕业证书用的照片" in reply, student.dump()
    await _photo_and_review(world, student)
    said = await world.review(openid, "review_rejected", procedure=NAME, reasons=["专业名称与准考证不符"])
    assert any("专业名称与准考证不符" in s and "准考证号" in s for s in said), said
    assert await student.where() == f"{NAME}/exam_no"
    await _answer(student, "141234567890", "小店区", "太原市小店区学府街100号", *short)
    await _photo_and_review(world, student)
    said = await review_again(world, openid, "review_rejected", 2, procedure=NAME, reasons=["仍不符"])
    assert any("1次机会也已用过" in s for s in said) and await student.where() == "none", said
    reply = await student.send("自考毕业申请")
    assert "1次机会也已用过" in reply and await student.where() == "none"
    assert await _orders(world, openid) == []
    assert len(await links_in_inbox(world, openid, "/pay/")) == 0
