"""The review flow through the console over real HTTP: a reviewer rejects or approves, the student's
template message arrives in the stand-in's inbox exactly once, and the decision is audited."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot import keys
from bot.console.state import CONSOLE
from bot.services.notify.limiter import RateLimiter
from bot.services.notify.templates import load_templates
from bot.services.notify.ticker import Ticker
from dialogs.session import Frame, SessionRecord
from storage.keys import KeyBuilder
from storage.sql import audit, notifications, reviews, students
from storage.sql.notifications import Notification
from tests.fixtures.app import RecordingJobs
from tests.fixtures.console import PROCEDURE, PROCEDURE_TITLE, T0, ConsoleFactory, ConsoleWorld

# The whole flow runs on both backends; the variations below on PostgreSQL (production).
PG_ONLY = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)
STUDENT = "oConsoleStudent_0001_abcdef"
OTHER = "oConsoleStudent_0002_ghijkl"


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
    sent = await until_settled(world, review_id)  # the inbox may show it a moment before we record it
    async with world.db.read() as conn:
        review = await reviews.get(conn, review_id)
        trail = await audit.for_student(conn, STUDENT)
    assert review is not None and review.state == "rejected" and review.decided_by == "li"
    text = "照片质量不符合要求：头部偏小：头顶到下巴应占照片高度的 2/3"
    assert review.reasons == [{"code": "photo_quality", "text": text, "items": ["head_size"]}]
    assert sent.state == "sent" and sent.msgid == message["msgid"]
    assert any(e.action == "review.reject" and e.actor == "li" for e in trail)
    notice = await browser.http.get(message["payload"]["url"].replace(world.settings.public_url, world.base))
    page = await notice.text()
    assert notice.status == 200 and "请在白天重拍" in page and "张" not in page
    assert json.dumps(data, ensure_ascii=False)


# --- the dialog hears the decision ----------------------------------------------------------------

async def waiting_for_review(world: ConsoleWorld, openid: str, last_seen: float) -> None:
    """The student's session as the procedure leaves it after submitting: waiting for the review."""
    store = world.app[keys.STORE]
    begin = await store.begin(openid, "seed-session", 5)
    assert begin.turn is not None
    record = SessionRecord(v=1, stack=[Frame(PROCEDURE, 1, "review__wait", {"title": PROCEDURE_TITLE})],
                           last_seen=last_seen)
    await store.commit(begin.turn, record.dumps(), b"")


async def top_state(world: ConsoleWorld, openid: str) -> str | None:
    record = SessionRecord.loads(await world.app[keys.STORE].peek(openid))
    return record.top.state if record.top else None


@PG_ONLY
async def test_a_rejection_sends_the_dialog_back_to_the_photo_step(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    await waiting_for_review(world, STUDENT, world.gradbot.clock())
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", [("action", "reject"), ("reason", "incomplete")])
    assert await top_state(world, STUDENT) == "photo"
    assert world.gradbot.jobs.cs == []  # customer-service copies are off unless configured
    await world.wait_inbox(STUDENT)


@PG_ONLY
async def test_an_approval_finishes_the_dialog_and_may_be_copied_by_cs(make_console: ConsoleFactory) -> None:
    jobs = RecordingJobs()
    world = await make_console(notify_use_cs=True, jobs=jobs)
    review_id = await world.seed(STUDENT, "submitted")
    await waiting_for_review(world, STUDENT, world.gradbot.clock() - 3600)  # wrote an hour ago
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    assert await top_state(world, STUDENT) is None  # the procedure finished
    [(openid, messages, key)] = jobs.cs
    assert (openid, key) == (STUDENT, f"review:{review_id}") and "已完成" in messages[0].content
    [message] = await world.wait_inbox(STUDENT)
    assert message["payload"]["data"]["phrase2"]["value"] == "通过"


@PG_ONLY
async def test_a_student_in_no_waiting_dialog_hears_the_result_and_its_reasons(make_console: ConsoleFactory) -> None:
    jobs = RecordingJobs()
    world = await make_console(notify_use_cs=True, jobs=jobs)
    review_id = await world.seed(STUDENT, "submitted")
    store = world.app[keys.STORE]
    begin = await store.begin(STUDENT, "seed-session", 5)
    assert begin.turn is not None
    await store.commit(begin.turn, SessionRecord(v=1, last_seen=world.gradbot.clock()).dumps(), b"")
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", [("action", "reject"), ("reason", "incomplete"),
                                                         ("reason", "other"), ("other", "缺少学信网采集码截图"),
                                                         ("note", "补交后再提交")])
    [(_, [message], _)] = jobs.cs
    assert "没有通过审核" in message.content and "· 材料不全" in message.content
    assert "· 其他：缺少学信网采集码截图" in message.content and "老师留言：补交后再提交" in message.content


@PG_ONLY
async def test_no_customer_service_copy_after_48_hours(make_console: ConsoleFactory) -> None:
    jobs = RecordingJobs()
    world = await make_console(notify_use_cs=True, jobs=jobs)
    review_id = await world.seed(STUDENT, "submitted")
    await waiting_for_review(world, STUDENT, world.gradbot.clock() - 49 * 3600)
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    assert jobs.cs == []
    await world.wait_inbox(STUDENT)  # the template message goes regardless


# --- the form and concurrent reviewers ------------------------------------------------------------

@PG_ONLY
async def test_a_rejection_needs_a_reason(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    resp = await browser.post(f"/console/reviews/{review_id}", {"action": "reject"})
    assert resp.status == 400 and "请至少选择一个不通过的原因" in browser.last
    resp = await browser.post(f"/console/reviews/{review_id}", [("action", "reject"), ("reason", "other")])
    assert resp.status == 400 and "请写明原因" in browser.last
    resp = await browser.post(f"/console/reviews/{review_id}", {"action": "maybe"})
    assert resp.status == 400
    async with world.db.read() as conn:
        review = await reviews.get(conn, review_id)
    assert review is not None and review.state == "pending"


@PG_ONLY
async def test_two_reviewers_get_different_items_and_cannot_decide_each_others(console_world: ConsoleWorld) -> None:
    world = console_world
    first = await world.seed(STUDENT, "submitted")
    second = await world.seed(OTHER, "submitted", at=T0 + timedelta(minutes=5))
    li, wang = await world.signed_in("li"), await world.signed_in("wang")
    await li.post("/console/reviews/next", {})
    await wang.post("/console/reviews/next", {})
    assert f"审核 #{first}" in li.last and f"审核 #{second}" in wang.last
    resp = await wang.get(f"/console/reviews/{first}")
    assert "正由 li 审核" in wang.last and 'id="review-form"' not in wang.last
    resp = await wang.post(f"/console/reviews/{first}", {"action": "approve"})
    assert resp.status == 409
    async with world.db.read() as conn:
        review = await reviews.get(conn, first)
    assert review is not None and review.state == "pending"


# --- WeChat's answers to the template message -------------------------------------------------------

@PG_ONLY
async def test_the_delivery_report_is_recorded_on_the_notification(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    [message] = await world.wait_inbox(STUDENT)
    await until_settled(world, review_id)  # WeChat reports seconds later, after we stored the msgid
    event = world.gradbot.wechat.event_xml(STUDENT, "TEMPLATESENDJOBFINISH").replace(
        "</xml>", f"<MsgID>{message['msgid']}</MsgID><Status><![CDATA[success]]></Status></xml>")
    resp = await world.gradbot.post_xml(event, STUDENT)
    assert resp.status == 200
    async with world.db.read() as conn:
        sent = await notifications.by_client_msg_id(conn, f"rv{review_id}")
    assert sent is not None and sent.delivery == "success" and sent.delivered_at is not None


@PG_ONLY
async def test_an_unfollowed_student_is_marked_and_not_retried(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    await world.stub.interaction(STUDENT, "unsubscribe")  # unfollowed at WeChat; our record says following
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    sent = await until_settled(world, review_id)
    async with world.db.read() as conn:
        student = await students.get(conn, STUDENT)
    assert (sent.state, sent.errcode, sent.attempts) == ("failed", 43004, 1)
    assert student is not None and not student.following


@PG_ONLY
async def test_a_field_wechat_refuses_is_logged_by_name(make_console: ConsoleFactory,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    strict = load_templates().stub_templates()
    strict["TPL_REVIEW_RESULT"]["thing3"] = "phrase"  # the account's template has a 5-character field there
    world = await make_console(stub_templates=strict)
    review_id = await world.seed(STUDENT, "submitted")
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", [("action", "reject"), ("reason", "incomplete"),
                                                         ("reason", "identity_failed")])
    sent = await until_settled(world, review_id)
    assert (sent.state, sent.errcode, sent.error) == ("failed", 47003, "field thing3")
    assert "refused field thing3 (47003)" in caplog.text


@PG_ONLY
async def test_busy_answers_are_retried_with_backoff(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    await world.stub.faults(-1, count=3, paths=("message/template/send",))  # beats the client's own 3 tries
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    sent = await until_settled(world, review_id)
    assert (sent.state, sent.attempts) == ("sent", 2)
    assert len(await world.wait_inbox(STUDENT)) == 1


@PG_ONLY
async def test_the_ticker_leaves_a_notification_alone_while_its_delivery_is_retrying(
    console_world: ConsoleWorld
) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    await world.stub.faults(-1, count=3, paths=("message/template/send",))
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    console = world.app[CONSOLE]
    keys_ = KeyBuilder(world.settings.redis_prefix, world.settings.wechat_appid)
    for _ in range(200):  # the first try failed; the job waits before the second
        async with world.db.read() as conn:
            row = await notifications.by_client_msg_id(conn, f"rv{review_id}")
        if row is not None and row.attempts == 1 and row.state == "pending":
            break
        await asyncio.sleep(0.02)
    ticker = Ticker(world.db, console.redis, keys_, console.broker, 1, stale=timedelta(0))
    assert await ticker.tick() == 0  # pending, but its job is on it: no second delivery beside it
    sent = await until_settled(world, review_id)
    assert (sent.state, sent.attempts) == ("sent", 2)
    assert len(await world.wait_inbox(STUDENT)) == 1


@PG_ONLY
async def test_the_quota_pauses_notifications_until_it_returns(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    await world.stub.faults(45009, count=1, paths=("message/template/send",))
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    await browser.post(f"/console/reviews/{review_id}", {"action": "approve"})
    console = world.app[CONSOLE]
    keys_ = KeyBuilder(world.settings.redis_prefix, world.settings.wechat_appid)
    limiter = RateLimiter(console.redis, keys_)
    while await limiter.paused_for() == 0:
        await asyncio.sleep(0.05)
    ticker = Ticker(world.db, console.redis, keys_, console.broker, 1, stale=timedelta(0))
    assert await ticker.tick() == 0  # nothing is queued while paused
    async with world.db.read() as conn:
        pending = await notifications.by_client_msg_id(conn, f"rv{review_id}")
    assert pending is not None and pending.state == "pending"
    await limiter.resume()  # the quota is back (next day, or clear_quota)
    assert await ticker.tick() == 1
    sent = await until_settled(world, review_id)
    assert sent.state == "sent" and len(await world.wait_inbox(STUDENT)) == 1


async def until_settled(world: ConsoleWorld, review_id: int) -> Notification:
    for _ in range(400):
        async with world.db.read() as conn:
            found = await notifications.by_client_msg_id(conn, f"rv{review_id}")
        if found is not None and found.state != "pending":
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the notification never settled")
