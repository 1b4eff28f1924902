"""End to end through HTTP: chat link → pay page → OAuth → JSAPI prepay → cashier → notification →
order paid → dialog advanced → student told by customer-service message; cancel, fail, expiry."""

from __future__ import annotations

from datetime import timedelta

from bot import keys
from bot.services.payments.reconcile import Reconciler
from bot.services.payments.service import ORDER_TTL, PREPAY_TTL
from tests.fixtures.pay import OTHER, STUDENT, PayWorld, eventually


async def _to_page(world: PayWorld, url: str) -> str:
    await world.sign_in(STUDENT)
    status, html = await world.open_in_wechat(url)
    assert status == 200, html
    return html


async def test_link_to_paid_order_advances_dialog_and_tells_student(pay_world: PayWorld) -> None:
    world = pay_world
    url = await world.start_dialog()
    assert url.startswith(world.base + "/pay/")
    token = url.rsplit("/", 1)[1]
    assert STUDENT not in token and "GB" not in token  # nothing readable in the URL

    html = await _to_page(world, url)  # OAuth round trip through the stand-in, then the page
    assert "毕业生图像信息采集费" in html and "13.50" in html and "getBrandWCPayRequest" in html

    status, params = await world.prepay(url)
    assert status == 200, params
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    order = await world.order_of()
    assert order.state == "created" and order.amount_fen == 1350 and params["package"] == f"prepay_id={order.prepay_id}"

    result = await world.bridge(params)  # the sandbox checks paySign, then pays and notifies
    assert result["err_msg"] == "get_brand_wcpay_request:ok"
    paid = await world.wait_state(order.out_trade_no, "paid")
    assert paid.transaction_id and paid.payer_openid == STUDENT and paid.paid_at is not None

    await eventually(lambda: _has_message(world, "已收到您的付款：13.50 元"))
    attempts = await world.sandbox.attempts(order.out_trade_no)
    assert [a["status"] for a in attempts] == [204]
    assert await world.status(url) == "paid"
    reply = await world.gradbot.say(STUDENT, "你好")  # the paytest dialog finished: no pay prompt any more
    assert reply is not None and "/pay/" not in str(reply["Content"])
    assert world.app[keys.METRICS].payments.labels(outcome="paid")._value.get() == 1


async def _has_message(world: PayWorld, text: str) -> bool:
    return any(text in t for t in await world.inbox_texts())


async def test_same_link_returns_same_order_and_a_paid_fee_is_not_charged_again(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await _to_page(world, url)
    first = (await world.prepay(url))[1]
    second = (await world.prepay(url))[1]
    assert first["package"] == second["package"]  # one open order, one valid prepay id
    async with world.db.read() as conn:
        from storage.sql import orders as repo
        assert len(await repo.open_before(conn, world.payments.now_utc() + timedelta(days=1))) == 1
    await world.bridge(first)
    await world.wait_state((await world.order_of()).out_trade_no, "paid")
    status, body = await world.prepay(url)
    assert status == 409 and body["error"] == "already_paid"
    status, html = await world.open_in_wechat(url)
    assert status == 200 and "已经缴过了" in html


async def test_cancel_and_fail_leave_the_order_open_and_payable(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await _to_page(world, url)
    params = (await world.prepay(url))[1]
    assert (await world.bridge(params, "cancel"))["err_msg"] == "get_brand_wcpay_request:cancel"
    assert (await world.bridge(params, "fail"))["err_msg"] == "get_brand_wcpay_request:fail"
    order = await world.order_of()
    assert order.state == "created" and await world.status(url) == "created"
    assert await world.sandbox.attempts(order.out_trade_no) == []
    assert await world.inbox_texts() == []
    await world.bridge(params)  # paying afterwards still works, on the same order
    await world.wait_state(order.out_trade_no, "paid")


async def test_native_qr_outside_wechat(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    async with world.pc.get(url) as resp:
        html = await resp.text()
        assert resp.status == 200
    assert "<svg" in html and "扫一扫" in html and "getBrandWCPayRequest" in html
    order = await world.pay_natively(url)
    assert order.prepay_id is None
    paid = await world.wait_state(order.out_trade_no, "paid")
    assert paid.payer_openid  # whoever scanned; the order stays the student's
    assert paid.openid == STUDENT


async def test_expired_prepay_id_is_renewed(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await _to_page(world, url)
    old = (await world.prepay(url))[1]
    world.clock.advance(PREPAY_TTL + 60)
    stale = await world.sandbox.post("jsapi", {**old, "outcome": "success"})
    assert stale[0] == 400 and stale[1]["code"] == "PREPAY_EXPIRED"
    status, _ = await world.prepay(url)
    assert status == 401  # the payer cookie lapsed too: the page signs the student in again
    await _to_page(world, url)
    status, new = await world.prepay(url)
    assert status == 200 and new["package"] != old["package"]
    order = await world.order_of()
    await world.bridge(new)
    await world.wait_state(order.out_trade_no, "paid")


async def test_expired_order_is_closed_and_replaced_by_a_new_number(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await _to_page(world, url)
    first = (await world.prepay(url))[1]
    old = await world.order_of()
    world.clock.advance(ORDER_TTL)
    counts = await Reconciler(world.payments, _never).run_once()
    assert counts["closed"] == 1
    assert (await world.get_order(old.out_trade_no)).state == "closed"
    assert world.sandbox.sandbox.book.orders[old.out_trade_no].state == "CLOSED"
    rejected = await world.sandbox.post("jsapi", {**first, "outcome": "success"})
    assert rejected[0] == 400  # the old prepay can no longer be paid
    await _to_page(world, url)
    new = (await world.prepay(url))[1]
    fresh = await world.order_of()
    assert fresh.out_trade_no != old.out_trade_no and fresh.state == "created"
    await world.bridge(new)
    await world.wait_state(fresh.out_trade_no, "paid")
    assert [e.to_state for e in await world.events(old.out_trade_no)] == ["created", "closed"]


async def _never(order: object) -> None:
    raise AssertionError("nothing should be paid here")


async def test_reconciliation_finds_a_payment_whose_notifications_were_lost(pay_world: PayWorld) -> None:
    world = pay_world
    await world.sandbox.post("switches", {"hold": True})  # every notification is lost
    url = world.link()
    await _to_page(world, url)
    await world.bridge((await world.prepay(url))[1])
    order = await world.order_of()
    assert order.state == "created"
    told: list[str] = []

    async def on_paid(paid: object) -> None:
        told.append(getattr(paid, "out_trade_no", ""))

    world.clock.advance(600)
    counts = await Reconciler(world.payments, on_paid).run_once()
    assert counts["paid"] == 1 and told == [order.out_trade_no]
    assert (await world.get_order(order.out_trade_no)).state == "paid"


async def test_the_page_refuses_another_wechat_user(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await world.sign_in(OTHER)
    status, html = await world.open_in_wechat(url)
    assert status == 403 and "本人" in html
    status, body = await world.prepay(url)
    assert status == 401 and body["error"] == "no_payer"


async def test_a_payment_outside_the_pay_state_is_acknowledged_without_moving_the_dialog(pay_world: PayWorld) -> None:
    world = pay_world
    await world.start_dialog()  # the dialog waits for photo_collection
    other_fee = world.link(item="photo_reverify_1")  # an unrelated 2-yuan re-verification fee
    order = await world.pay_natively(other_fee, item="photo_reverify_1")
    assert order.amount_fen == 200 and order.item == "photo_reverify_1"
    await world.wait_state(order.out_trade_no, "paid")
    await eventually(lambda: _has_message(world, "已收到您的付款：2.00 元"))
    reply = await world.gradbot.say(STUDENT, "还在吗")  # still in the pay state: the prompt again
    assert reply is not None and "/pay/" in str(reply["Content"]) and "13.5" in str(reply["Content"])


async def test_reconciliation_backs_off_to_hourly_for_old_unpaid_orders(pay_world: PayWorld) -> None:
    world = pay_world
    await world.sandbox.post("switches", {"hold": True})
    url = world.link()
    await _to_page(world, url)
    await world.bridge((await world.prepay(url))[1])
    order = await world.order_of()
    reconciler = Reconciler(world.payments, _ignore)
    world.clock.advance(45 * 60)  # past the every-pass window, between two hourly checks: not asked
    await reconciler.run_once()
    assert (await world.get_order(order.out_trade_no)).state == "created"
    world.clock.advance(15 * 60 + 10)  # the hourly check
    assert (await reconciler.run_once())["paid"] == 1


async def _ignore(order: object) -> None:
    return None
