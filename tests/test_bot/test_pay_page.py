"""The pay page's bad inputs (tampered, expired, foreign links; failed OAuth; payments off), and the
pieces under it: sealed tokens, fees as data, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, SettingsError
from bot.render import Renderer
from bot.sandbox.pay_keys import SandboxKeys
from bot.services.payments.config import PayConfig, link_secret
from bot.services.payments.errors import NotificationRejected, UnknownFee
from bot.services.payments.fees import load_fees
from bot.services.payments.links import LINK_TTL, LinkClaims, Sealer, TokenExpired, TokenInvalid
from bot.services.payments.notify import transaction_of
from bot.services.payments.service import link_intent
from tests.fixtures.app import GradbotFactory
from tests.fixtures.pay import STUDENT, PayWorld, pay_settings


def _flip(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


async def test_tampered_foreign_and_expired_links_get_a_kind_page(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    token = url.rsplit("/", 1)[1]
    payer_cookie = world.payments.sealer.payer(STUDENT, world.clock())
    cases = {_flip(token): 404, "not-a-token": 404, "x" * 600: 404, payer_cookie: 404}
    for bad, expected in cases.items():
        async with world.pc.get(f"{world.base}/pay/{bad}") as resp:
            assert resp.status == expected
            html = await resp.text()
            assert "付款链接无效" in html and "Traceback" not in html
        async with world.pc.post(f"{world.base}/pay/{bad}/prepay") as resp:
            assert resp.status == expected and (await resp.json())["error"] == "link_invalid"
    world.clock.advance(LINK_TTL + 1)
    async with world.pc.get(url) as resp:
        assert resp.status == 410 and "已过期" in await resp.text()
    async with world.pc.get(url + "/status") as resp:
        assert resp.status == 410


async def test_page_is_chinese_mobile_first_and_leaks_nothing(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    await world.sign_in(STUDENT)
    async with world.browser.get(url) as resp:
        html = await resp.text()
        history = [str(r.url) for r in resp.history] + [str(resp.url)]
        assert resp.headers["Cache-Control"] == "no-store"
    assert '<html lang="zh-CN">' in html and 'name="viewport"' in html and 'aria-live="polite"' in html
    assert STUDENT not in html and all(STUDENT not in u for u in history)  # not in any URL on the way
    cookie = next(c for c in world.browser.cookie_jar if c.key == "gb_payer")
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/pay"
    assert STUDENT not in cookie.value


async def test_oauth_without_code_or_with_a_used_code_is_refused(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    token = url.rsplit("/", 1)[1]
    async with world.pc.get(f"{world.base}/pay/oauth?t={token}") as resp:
        assert resp.status == 400 and "没能确认您的微信身份" in await resp.text()
    await world.sign_in(STUDENT)
    async with world.browser.get(url) as resp:
        callback = next(str(r.url) for r in resp.history if r.url.path == "/pay/oauth")
    async with world.pc.get(callback, allow_redirects=False) as resp:  # the same code again (refresh)
        assert resp.status == 400
    async with world.pc.get(f"{world.base}/pay/oauth?t=bogus&code=abc") as resp:
        assert resp.status == 404


async def test_status_before_any_order_and_without_payer(pay_world: PayWorld) -> None:
    world = pay_world
    url = world.link()
    async with world.pc.get(url + "/status") as resp:
        assert (await resp.json()) == {"state": "none"}
    async with world.pc.post(url + "/prepay") as resp:
        assert resp.status == 401


async def test_payments_off_answers_503_everywhere(make_gradbot: GradbotFactory) -> None:
    gradbot = await make_gradbot()
    resp = await gradbot.client.get("/pay/sometoken")
    assert resp.status == 503 and "支付暂时不可用" in await resp.text()
    resp = await gradbot.client.post("/pay/notify", data=b"{}")
    assert resp.status == 503 and (await resp.json())["code"] == "FAIL"


def test_sealed_tokens() -> None:
    sealer = Sealer(b"k" * 32)
    claims = LinkClaims(STUDENT, "photo", "photo_collection")
    token = sealer.link(claims, now=1000.0)
    assert sealer.open_link(token, now=1000.0 + LINK_TTL - 1) == claims
    assert len(token) < 200 and STUDENT not in token
    with pytest.raises(TokenExpired):
        sealer.open_link(token, now=1000.0 + LINK_TTL)
    with pytest.raises(TokenInvalid):
        Sealer(b"j" * 32).open_link(token, now=1000.0)
    with pytest.raises(TokenInvalid):
        sealer.open_payer(token, now=1000.0)  # a link is not a payer cookie
    with pytest.raises(TokenInvalid):
        sealer.open_link(_flip(token), now=1000.0)


def test_fees_are_data(tmp_path: Path) -> None:
    fees = load_fees()
    assert fees.find("photo", "photo_collection").amount_fen == 1350
    assert fees.find("photo", "photo_reverify_3").amount_fen == 200  # each re-verification: 2 yuan
    with pytest.raises(UnknownFee):
        fees.find("photo", "lunch")
    school = tmp_path / "fees.toml"
    school.write_text('[[fee]]\nprocedure = "photo"\nitem = "photo_collection"\nschool = "*"\namount_fen = 1350\n'
                      'description = "采集费"\n[[fee]]\nprocedure = "photo"\nitem = "photo_collection"\n'
                      'school = "4142010514"\namount_fen = 1200\ndescription = "采集费"\n', encoding="utf-8")
    table = load_fees(school)
    assert table.find("photo", "photo_collection", "4142010514").amount_fen == 1200
    assert table.find("photo", "photo_collection", "4100000000").amount_fen == 1350
    school.write_text('[[fee]]\nprocedure = "photo"\nitem = "x"\namount_fen = 13.5\ndescription = "y"\n',
                      encoding="utf-8")
    with pytest.raises(ValueError, match="fen"):
        load_fees(school)


def test_pay_settings_are_checked_and_secrets_not_shown(settings: Settings, sandbox_keys: SandboxKeys) -> None:
    s = pay_settings(settings, sandbox_keys, "http://127.0.0.1:9", 8080)
    config = PayConfig.from_settings(s)
    assert config.appid == settings.wechat_appid and config.notify_url == "http://127.0.0.1:8080/pay/notify"
    assert sandbox_keys.apiv3_key not in repr(s) + repr(config) and "test-link-secret" not in repr(s)
    with pytest.raises(SettingsError, match="GRADBOT_PAY_PUBLIC_KEY_ID"):
        PayConfig.from_settings(s.with_(pay_public_key_id=""))
    with pytest.raises(SettingsError, match="GRADBOT_PAY_PRIVATE_KEY_PATH"):
        PayConfig.from_settings(s.with_(pay_private_key_path="/nonexistent/key.pem"))
    env = Settings.from_env({"GRADBOT_PAY_MCHID": "1900000109", "GRADBOT_PAY_APPID": "wxpay"})
    assert (env.pay_mchid, env.pay_appid) == ("1900000109", "wxpay")
    assert link_secret(s) != link_secret(s.with_(pay_link_secret="other"))


def test_transactions_of_another_merchant_or_app_are_not_ours() -> None:
    resource = {"appid": "wxA", "mchid": "1900000109", "out_trade_no": "GB1", "transaction_id": "42",
                "trade_state": "SUCCESS", "amount": {"total": 1350, "currency": "CNY"}, "payer": {"openid": "o"}}
    assert transaction_of({"resource": resource}, "wxA", "1900000109").amount_fen == 1350
    for appid, mchid in (("wxB", "1900000109"), ("wxA", "1900000110")):
        with pytest.raises(NotificationRejected) as caught:
            transaction_of({"resource": resource}, appid, mchid)
        assert caught.value.code == "not_ours" and caught.value.status == 400
    with pytest.raises(NotificationRejected):
        transaction_of({"resource": {**resource, "amount": {}}}, "wxA", "1900000109")


async def test_the_link_as_text_and_as_one_article_news(pay_world: PayWorld) -> None:
    data = pay_world.payments.dialog_data(LinkClaims(STUDENT, "photo", "photo_reverify_2"))
    assert data["pay_amount_fen"] == 200 and data["pay_item"] == "photo_reverify_2"
    renderer = Renderer()
    news = renderer.message(link_intent(data))
    assert news.kind == "news" and news.url == data["pay_url"] and news.url.startswith(pay_world.base + "/pay/")
    assert "照片重新核验技术服务费" in news.title and "2.00" in news.description
    text = renderer.render("pay/prompt", data=data)
    assert data["pay_url"] in text and "2.00 元" in text
    with pytest.raises(UnknownFee):
        pay_world.payments.dialog_data(LinkClaims(STUDENT, "photo", "lunch"))
