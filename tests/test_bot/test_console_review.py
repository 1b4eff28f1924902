"""The review flow through the console over real HTTP: a reviewer rejects or approves, the student's
template message arrives in the stand-in's inbox exactly once, and the decision is audited."""

from __future__ import annotations

import json

from storage.sql import audit, notifications, reviews
from tests.fixtures.console import ConsoleWorld

STUDENT = "oConsoleStudent_0001_abcdef"


async def test_a_rejection_reaches_the_student_as_a_template_message(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    browser = await world.signed_in("li")
    resp = await browser.get(f"/console/reviews/{review_id}")
    assert resp.status == 200
    assert "张**" in browser.last and "张小明" not in browser.last  # masked identity only
    form = [("action", "reject"), ("reason", "photo_quality"), ("item", "head_size"), ("note", "请在白天重拍")]
    resp = await browser.post(f"/console/reviews/{review_id}", form)
    assert resp.status == 200, browser.last[:300]
    [message] = await world.wait_inbox(STUDENT)
    data = {k: v["value"] for k, v in message["payload"]["data"].items()}
    assert message["payload"]["template_id"] == "TPL_REVIEW_RESULT"
    assert data["phrase2"] == "未通过"
    assert data["thing3"].startswith("照片质量不符合要求") and len(data["thing3"]) <= 20
    assert message["payload"]["url"].startswith(world.settings.public_url + "/notice/")
    async with world.db.read() as conn:
        review = await reviews.get(conn, review_id)
        sent = await notifications.by_client_msg_id(conn, f"rv{review_id}")
        trail = await audit.for_student(conn, STUDENT)
    assert review is not None and review.state == "rejected" and review.decided_by == "li"
    text = "照片质量不符合要求：头部偏小：头顶到下巴应占照片高度的 2/3"
    assert review.reasons == [{"code": "photo_quality", "text": text, "items": ["head_size"]}]
    assert sent is not None and sent.state == "sent" and sent.msgid == message["msgid"]
    assert any(e.action == "review.reject" and e.actor == "li" for e in trail)
    notice = await browser.http.get(message["payload"]["url"].replace(world.settings.public_url, world.base))
    page = await notice.text()
    assert notice.status == 200 and "请在白天重拍" in page and "张" not in page
    assert json.dumps(data, ensure_ascii=False)
