"""``POST /pay/notify`` against the sandbox's dispatcher: forgeries, probes, replays, wrong amounts,
reordering, concurrent duplicates, and a database that is down (WeChat Pay must retry)."""

from __future__ import annotations

import asyncio

import pytest

from bot import keys
from bot.sandbox.pay_notify import FORGERIES
from tests.fixtures.pay import STUDENT, PayWorld, PayWorldFactory, eventually


async def _paid_at_sandbox_only(world: PayWorld) -> str:
    """A payment WeChat Pay knows of, whose notifications are held back: gradbot still says unpaid."""
    await world.sandbox.post("switches", {"hold": True})
    url = world.link()
    await world.sign_in(STUDENT)
    await world.open_in_wechat(url)
    await world.bridge((await world.prepay(url))[1])
    order = await world.order_of()
    assert order.state == "created"
    return order.out_trade_no


def _outcome(world: PayWorld, name: str) -> float:
    return float(world.app[keys.METRICS].payments.labels(outcome=name)._value.get())


@pytest.mark.parametrize("kind", [k for k in FORGERIES if k != "wrong_amount"])
async def test_forged_stale_and_probe_notifications_are_refused(pay_world: PayWorld, kind: str) -> None:
    world = pay_world
    no = await _paid_at_sandbox_only(world)
    assert await world.sandbox.inject(kind, no) == 401
    order = await world.get_order(no)
    assert order.state == "created" and order.transaction_id is None
    assert [e.to_state for e in await world.events(no)] == ["created"]
    assert world.sandbox.sandbox.dispatcher.attempts[-1].status == 401
    world.sandbox.sandbox.dispatcher.release()  # the genuine one still gets through afterwards
    await world.wait_state(no, "paid")


async def test_wrong_amount_is_refused_even_when_correctly_signed(pay_world: PayWorld) -> None:
    world = pay_world
    no = await _paid_at_sandbox_only(world)
    assert await world.sandbox.inject("wrong_amount", no, amount=1) == 400
    assert (await world.get_order(no)).state == "created"
    assert _outcome(world, "amount_mismatch") == 1
    assert _outcome(world, "rejected_amount_mismatch") == 1


async def test_replayed_notification_changes_nothing_and_tells_nobody_twice(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await world.start_dialog()
    await world.sign_in(STUDENT)
    await world.open_in_wechat(url)
    await world.bridge((await world.prepay(url))[1])
    no = (await world.order_of()).out_trade_no
    await world.wait_state(no, "paid")
    await eventually(lambda: _inbox_has(world, 1))
    for _ in range(3):
        assert await world.sandbox.inject("replay", no) == 204
    assert [e.to_state for e in await world.events(no)] == ["created", "paid"]
    await world.sandbox.sandbox.dispatcher.idle()
    await asyncio.sleep(0.3)  # give a (wrong) second job time to be sent
    assert len(await world.inbox_texts()) == 1


async def _inbox_has(world: PayWorld, n: int) -> bool:
    return len(await world.inbox_texts()) >= n


async def test_notification_for_an_order_that_is_not_ours_is_refused(pay_world: PayWorld) -> None:
    world = pay_world
    no = await _paid_at_sandbox_only(world)
    async with world.db.begin() as conn:  # the order vanished from our side (another merchant system)
        await conn.exec_driver_sql("DELETE FROM order_events")
        await conn.exec_driver_sql("DELETE FROM orders")
    assert await world.sandbox.inject("replay", no) == 400


async def test_ten_concurrent_duplicates_change_the_order_once_and_send_one_message(
        make_pay_world: PayWorldFactory, sql_url: str) -> None:
    world = await make_pay_world(database_url=sql_url)
    url = await world.start_dialog()
    await world.sandbox.post("switches", {"duplicates": 9})  # each notification arrives 10 times at once
    await world.sign_in(STUDENT)
    await world.open_in_wechat(url)
    await world.bridge((await world.prepay(url))[1])
    no = (await world.order_of()).out_trade_no
    await world.sandbox.sandbox.dispatcher.idle()
    attempts = await world.sandbox.attempts(no)
    assert len(attempts) >= 10 and attempts[-1]["status"] == 204
    assert [e.to_state for e in await world.events(no)] == ["created", "paid"]
    assert _outcome(world, "paid") == 1
    await eventually(lambda: _inbox_has(world, 1))
    await asyncio.sleep(0.3)
    assert await world.inbox_texts() == ["已收到您的付款：13.50 元。谢谢！\n如需查看办理进度，请发送“进度”。"]


async def test_notifications_released_out_of_order_still_pay_each_order_once(pay_world: PayWorld) -> None:
    world = pay_world
    await world.sandbox.post("switches", {"hold": True, "duplicates": 1})
    url = world.link()
    await world.sign_in(STUDENT)
    await world.open_in_wechat(url)
    await world.bridge((await world.prepay(url))[1])
    no = (await world.order_of()).out_trade_no
    assert (await world.sandbox.post("release", {"order": "reverse"}))[1]["released"] == 1
    await world.wait_state(no, "paid")
    assert [e.to_state for e in await world.events(no)] == ["created", "paid"]


async def test_database_down_means_wechat_pay_is_asked_to_retry(make_pay_world: PayWorldFactory) -> None:
    # Nothing listens on port 1: every database call fails. The payment must not be acknowledged.
    world = await make_pay_world(database_url="postgresql+asyncpg://gradbot@127.0.0.1:1/none", migrate=False)
    order = {"description": "毕业生图像信息采集费", "out_trade_no": "GBTESTDBDOWN0001",
             "amount": {"total": 1350, "currency": "CNY"}}
    code_url = await world.payments.client.prepay_native(order)
    status, _ = await world.sandbox.post(f"pay/{code_url.rsplit('pr=', 1)[1]}", {"outcome": "success"})
    assert status == 200

    async def retried() -> bool:
        return len(await world.sandbox.attempts("GBTESTDBDOWN0001")) >= 3
    await eventually(retried)
    assert {a["status"] for a in await world.sandbox.attempts("GBTESTDBDOWN0001")} == {500}
    assert _outcome(world, "db_unavailable") >= 3
    async with world.pc.get(world.link()) as resp:  # the page says so kindly, no stack trace
        assert resp.status == 503 and "支付暂时不可用" in await resp.text()


async def test_bad_requests_to_notify_get_a_failure_answer_not_a_500(pay_world: PayWorld) -> None:
    client = pay_world.gradbot.client
    for body, headers in [(b"", {}), (b"not json", {"Content-Type": "application/json"}),
                          (b"{}", {"Wechatpay-Serial": pay_world.settings.pay_public_key_id,
                                   "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                                   "Wechatpay-Signature": "AAAA", "Wechatpay-Nonce": "n",
                                   "Wechatpay-Timestamp": "not-a-number"})]:
        resp = await client.post("/pay/notify", data=body, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["code"] == "FAIL"
    resp = await client.post("/pay/notify", data=b"x" * (70 * 1024))
    assert resp.status == 413
