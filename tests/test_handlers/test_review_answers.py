"""A review item holds what the student answered, labelled by the procedure's steps, and nothing of
the dialog's bookkeeping: not the procedure title, not its window dates, not the 24-hour download
link of the fixed photo, not photo or order ids. (It used to keep every string of the dialog's data.)"""

from __future__ import annotations

import json

from bot import keys
from storage.sql import reviews
from tests.fixtures.photos import phone_photo
from tests.fixtures.procedure import WorldFactory, china_time
from tests.fixtures.seed_steps import bind, link

NAME = "hanjiang_photo_2025"
OPENID = "oHanjiang_ReviewAnswers_0001"


async def test_the_review_item_holds_the_answers_and_no_internal_values(make_world: WorldFactory) -> None:
    world = await make_world(china_time("2025-04-01T10:00:00"))
    student = world.student(OPENID)
    await world.stub.interaction(OPENID)
    await student.send("图像采集")
    await bind(student)
    await link(student, ("湖北", "十堰", "汉江师范学院", "1", "3"), "2025届 毕业")
    await student.send("同意")
    await student.send("ab12cd34ef")
    await student.image(await world.photo(phone_photo()))
    assert await student.where() == f"{NAME}/photo__fixed", student.dump()
    await world.wait_inbox(OPENID, "/files/")  # the dialog now holds the fixed photo's signed link
    reply = await student.send("确认")
    await world.pay(next(w for w in reply.split() if "/pay/" in w), OPENID, "photo_collection")
    await world.wait_inbox(OPENID, "审核")
    assert await student.where() == f"{NAME}/review__wait"

    async with world.gradbot.app[keys.SERVICES].db.read() as conn:
        item = await reviews.latest(conn, OPENID, NAME)
    assert item is not None and item.photo_id is not None
    assert item.documents == [{"kind": "answer", "name": "collection_code", "label": "填写采集码",
                               "value": "AB12CD34EF"}]  # upper = true
    stored = json.dumps(item.documents, ensure_ascii=False)
    for internal in ("/files/", "/pay/", "fixed_url", "2025-03-11", "2025-05-05", "2025届毕业生图像采集",
                     "photo_id", "pay_", "title"):
        assert internal not in stored, (internal, stored)
