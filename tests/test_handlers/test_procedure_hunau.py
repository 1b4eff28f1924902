"""Seed 001 end to end: 湖南农业大学东方科技学院 graduates check their photo on 学信网, through HTTP.

start → (binding, school linking) → how to check → 有误 with a category → a review item for the
academic office and the re-shoot schedule and place → staff say it is fixed → check again →
正确, confirmed on the site → done. Also: staff answer without fixing, the student re-checks by
themselves; after the deadline the procedure says when it ran.
"""

from __future__ import annotations

from bot import keys
from storage.sql import reviews
from tests.fixtures.conversation import Student
from tests.fixtures.procedure import World, WorldFactory, china_time
from tests.fixtures.seed_steps import bind, link

NAME = "hunau_dfkj_photo_check"
LINK = ("湖南", "长沙", "东方科技学院", "5", "2")


async def _report_wrong(world: World, openid: str) -> Student:
    student = world.student(openid)
    await student.send("照片核对")
    await bind(student)
    reply = await link(student, LINK, "2018届 毕业")
    assert "学信档案" in reply and "4月30日" in reply, student.dump()
    reply = await student.send("返回")  # only binding and linking lie behind: nothing to go back to
    assert "不能返回上一步" in reply and "学信档案" in reply and await student.where() == f"{NAME}/guide"
    reply = await student.send("好")
    assert "1. 正确" in reply and "2. 有误" in reply, student.dump()
    reply = await student.send("有误")
    assert "照片侧卧" in reply and "照片倒立" in reply and "照片不是我本人" in reply
    reply = await student.send("2")  # 照片侧卧
    assert "已把问题（照片侧卧）报告给教务部" in reply, student.dump()
    assert "九教南107室" in reply and "每周三" in reply and "迎宾路175号" in reply
    assert await student.where() == f"{NAME}/check__wait"
    return student


async def test_seed_001_wrong_photo_is_reported_fixed_and_checked_again(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2018-04-10T10:00:00"))
    openid = "oHunau_Student_000000000001"
    student = await _report_wrong(world, openid)
    async with world.gradbot.app[keys.SERVICES].db.read() as conn:
        item = await reviews.latest(conn, openid, NAME)
    assert item is not None and item.state == "pending" and item.school_code == "4143012653"
    what = {"kind": "answer", "name": "check__what", "label": "核对照片（问题类别）", "value": "照片侧卧"}
    assert what in item.documents

    said = await world.review(openid, "review_approved", review_id=item.id, procedure=NAME, note="照片已更正")
    assert any("照片已更正" in s and "再登录学信网核对" in s and "1. 正确" in s for s in said), said
    assert await student.where() == f"{NAME}/check"
    reply = await student.send("1")
    assert "毕业照片正确" in reply and "确认" in reply
    reply = await student.send("确认")
    assert "核对完成" in reply and await student.where() == "none", student.dump()
    assert "✓ 毕业照片核对" in await student.send("进度")


async def test_staff_answer_without_a_fix_and_the_student_checks_again_by_themselves(
    make_world: WorldFactory,
) -> None:
    world = await make_world(china_time("2018-04-10T10:00:00"))
    openid = "oHunau_Again_00000000000001"
    student = await _report_wrong(world, openid)
    said = await world.review(openid, "review_rejected", procedure=NAME, reasons=["请本人到教务部办理"])
    assert any("请本人到教务部办理" in s for s in said) and await student.where() == f"{NAME}/check__wait"
    reply = await student.send("你好")
    assert "重新核对" in reply and await student.where() == f"{NAME}/check__wait"
    reply = await student.send("重新核对")
    assert "2. 有误" in reply and await student.where() == f"{NAME}/check"


async def test_after_the_deadline_the_check_says_when_it_ran(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2018-05-02T10:00:00"))
    student = world.student("oHunau_Late_000000000000001")
    reply = await student.send("照片核对")
    assert "2018年3月1日至2018年4月30日" in reply and await student.where() == "none"
