"""Seed 000 end to end: 湖南师范大学's bachelor's degree application, through HTTP.

start → (binding, school linking) → notice → 学号 (成教 only) → ID card both sides, diploma, one of
the foreign-language proofs, the 学信网 record → degree photo → 2 元 verification fee → school review
rejected → documents again (earlier files kept with 「沿用」) → a second 2 元 attempt → approved →
the final confirmation (nothing can change after it: no back, no cancel) → the receipt PDF that
collects the degree certificate → asking again only hands out the receipt again.
"""

from __future__ import annotations

from bot import keys
from storage.sql import documents, reviews
from tests.fixtures.conversation import Student
from tests.fixtures.pay import eventually
from tests.fixtures.photos import jpeg, studio
from tests.fixtures.procedure import World, WorldFactory, china_time
from tests.fixtures.seed_steps import bind, fetch, link, links_in_inbox, new_link, pdf_text, send_scan, url_in

NAME = "hunnu_degree_2025"
OPENID = "oHunnu_Student_000000000001"


async def _pay_url_after_documents_and_photo(world: World, student: Student, first: bool) -> str:
    reply = await student.send("好")
    assert "人像面" in reply, student.dump()
    if first:
        for seed in (1, 2, 3):  # ID card front and back, diploma
            await send_scan(world, student, seed)
        reply = await student.send("1")  # CET-4 report
        assert "大学英语四级（CET-4）成绩单" in reply and await student.where() == f"{NAME}/docs__language"
        await send_scan(world, student, 4)
        reply = await send_scan(world, student, 5)  # the 学信网 record
    else:
        assert "沿用" in reply
        for _ in range(3):
            await student.send("沿用")
        await student.send("1")
        await student.send("沿用")
        reply = await student.send("沿用")
    assert "学位照片" in reply and await student.where() == f"{NAME}/photo", student.dump()
    await world.stub.interaction(student.openid)  # the student wrote: customer-service quota renews
    seen = len(await links_in_inbox(world, student.openid, "/pay/"))
    reply = await student.image(await world.photo(jpeg(studio(), kb=(100, 200))))
    assert "✅ 合格" in reply and await student.where() == f"{NAME}/fee__wait", student.dump()
    return await new_link(world, student.openid, reply, "/pay/", seen)


async def _waits_for_review(student: Student) -> None:
    async def there() -> bool:
        return await student.where() == f"{NAME}/first_review__wait"
    await eventually(there)


async def test_seed_000_degree_application_to_the_receipt(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-01T10:00:00"))
    student = world.student(OPENID)
    await world.stub.interaction(OPENID)
    await student.send("学位申请")
    await bind(student)
    reply = await link(student, ("湖南", "长沙", "湖南师大", "1", "2"), "2021级 学位申请")
    assert "每人只能提交一次申请" in reply, student.dump()
    await student.send("同意")
    reply = await student.send("2021")
    assert "6–20位" in reply
    reply = await student.send("20210001")
    assert "身份证" in reply and "任选一种" in reply, student.dump()
    url = await _pay_url_after_documents_and_photo(world, student, first=True)
    await world.pay(url, OPENID, "photo_verify")
    await _waits_for_review(student)
    db = world.gradbot.app[keys.SERVICES].db
    async with db.read() as conn:
        item = await reviews.latest(conn, OPENID, NAME)
        stored = await documents.for_procedure(conn, OPENID, NAME)
    assert item is not None and item.photo_id is not None
    listed = {d["name"]: d for d in item.documents if d.get("kind") == "document"}
    assert set(listed) == {"身份证 人像面", "身份证 国徽面", "本科毕业证", "外语成绩证明",
                           "学信网毕业生备案表（有成绩）"}
    assert "CET-4" in listed["外语成绩证明"]["value"] and len(stored) == 5
    assert {"kind": "answer", "name": "student_no", "label": "填写学号", "value": "20210001"} in item.documents
    assert not any(str(d.get("value", "")).startswith("http") for d in item.documents)  # no signed links

    said = await world.review(OPENID, "review_rejected", procedure=NAME, reasons=["毕业证扫描不清晰"])
    assert any("毕业证扫描不清晰" in s for s in said) and await student.where() == f"{NAME}/docs"
    url = await _pay_url_after_documents_and_photo(world, student, first=False)
    await world.pay(url, OPENID, "photo_verify_2")  # the second attempt costs 2 元 again
    await _waits_for_review(student)
    said = await world.review(OPENID, "review_approved", procedure=NAME)
    assert any("最后确认" in s and "不能再修改" in s for s in said), said

    assert "不能返回上一步" in await student.send("返回")  # not back into the review
    assert "已退出" in await student.send("取消")
    reply = await student.send("学位申请")  # past the review: it resumes at the confirmation
    assert "最后确认" in reply and await student.where() == f"{NAME}/final", student.dump()
    reply = await student.send("确认")
    assert "学士学位申请回执" in reply and "/docs/" in reply and await student.where() == "none", student.dump()
    status, ctype, pdf = await fetch(world, url_in(reply, "/docs/"))
    text = pdf_text(pdf)
    assert status == 200 and ctype == "application/pdf"
    for expected in ("学士学位申请回执", "湖南师范大学", "20210001", "大学英语四级（CET-4）成绩单", "领取学位证"):
        assert expected in text, text

    reply = await student.send("学位申请")  # one application only: asking again gives the receipt again
    assert "/docs/" in reply and "已提交" in reply and await student.where() == "none", student.dump()
