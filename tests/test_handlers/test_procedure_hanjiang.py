"""Seed 003 end to end: the 2025 graduate photo collection of 汉江师范学院, through HTTP.

follow → start → (binding and school linking, nested) → notice → collection code → a phone photo
that needs cropping → the fixed photo accepted → 13.5 yuan paid at the sandbox cashier →
submitted for review → approved. Also: outside the window, and a rejection sending the student
back to the photo step.
"""

from __future__ import annotations

from tests.fixtures.photos import phone_photo
from tests.fixtures.procedure import WorldFactory, china_time

OPENID = "oHanjiang_Student_00000000001"


async def _through_requirements(world, student) -> None:  # type: ignore[no-untyped-def]
    reply = await student.send("图像采集")
    assert "同意" in reply and await student.where() == "bind/consent"
    for answer in ("同意", "1", "陈小明", "{id:420302:20010203:141}"):
        await student.send(answer)
    reply = await student.send("确认")
    assert "实名认证完成" in reply and "省份" in reply, student.dump()  # bind done, linking begins
    for answer in ("湖北", "十堰", "汉江师范学院", "1", "3"):
        await student.send(answer)
    await student.send("2025届 毕业")
    reply = await student.send("确认")
    assert "学校关联完成" in reply and "办理时间" in reply, student.dump()
    assert await student.where() == "hanjiang_photo_2025/notice"


async def test_seed_003_photo_collection_end_to_end(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-01T10:00:00"))
    student = world.student(OPENID)
    await world.stub.interaction(OPENID)
    await _through_requirements(world, student)
    await student.send("同意")
    reply = await student.send("ab12-cd34")
    assert "8–16位" in reply and await student.where() == "hanjiang_photo_2025/collection_code"
    reply = await student.send("ab12cd34ef")
    assert "毕业照" in reply
    media = await world.photo(phone_photo())
    reply = await student.image(media)
    assert await student.where() == "hanjiang_photo_2025/photo__fixed", student.dump()
    inbox = await world.wait_inbox(OPENID, "/files/")  # the fixed photo's sealed download link
    assert '"image"' in inbox  # and the fixed photo itself, sent as an image message
    reply = await student.send("确认")
    assert "[news]" in reply and "13.50" in reply, student.dump()
    assert await student.where() == "hanjiang_photo_2025/fee__wait"
    url = next(w for w in reply.split() if "/pay/" in w)
    await world.pay(url, OPENID, "photo_collection")
    await world.wait_inbox(OPENID, "审核")
    assert await student.where() == "hanjiang_photo_2025/review__wait"
    reply = await student.send("好了吗")
    assert "正在审核" in reply
    said = await world.review(OPENID, "review_approved", review_id=1, procedure="hanjiang_photo_2025")
    assert any("图像采集已完成" in s for s in said)
    assert await student.where() == "none"
    status = await student.send("进度")
    assert "✓ 2025届毕业生图像采集" in status, student.dump()
    summary = await student.summary()
    assert summary["binding"]["verified"] == "match" and summary["school"]["name"] == "汉江师范学院"


async def test_outside_the_window_the_procedure_says_when_it_runs(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-06-01T10:00:00"))
    student = world.student("oHanjiang_Late_000000000001")
    reply = await student.send("图像采集")
    assert "2025年3月11日至2025年5月5日" in reply and await student.where() == "none"


async def test_a_rejection_sends_the_student_back_to_the_photo_step(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-01T10:00:00"))
    student = world.student("oHanjiang_Rejected_000000001")
    await world.stub.interaction(student.openid)
    await _through_requirements(world, student)
    await student.send("同意")
    await student.send("ab12cd34ef")
    await student.image(await world.photo(phone_photo()))
    reply = await student.send("确认")
    url = next(w for w in reply.split() if "/pay/" in w)
    await world.pay(url, student.openid, "photo_collection")
    await world.wait_inbox(student.openid, "审核")
    said = await world.review(student.openid, "review_rejected", reasons=["照片背景不均匀"],
                              procedure="hanjiang_photo_2025")
    assert any("照片背景不均匀" in s and "毕业照" in s for s in said), said
    assert await student.where() == "hanjiang_photo_2025/photo"


async def test_photo_download_errors_get_a_clear_answer_and_the_step_stays(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-01T10:00:00"))
    student = world.student("oHanjiang_MediaErrors_000001")
    await _through_requirements(world, student)
    await student.send("同意")
    await student.send("ab12cd34ef")
    reply = await student.image("NO_SUCH_MEDIA_ID_0000000000000000")  # 40007 at the stand-in
    assert "过期" in reply and await student.where() == "hanjiang_photo_2025/photo", student.dump()
    media = await world.photo(phone_photo())
    await world.stub.faults(-1, count=10, paths=("media/get",))  # system busy on every retry
    reply = await student.image(media)
    assert "没能下载" in reply and await student.where() == "hanjiang_photo_2025/photo", student.dump()
    reply = await student.send("好的")
    assert "需要发送一张照片" in reply
