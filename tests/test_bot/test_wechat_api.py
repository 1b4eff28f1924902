"""The async WeChat client against the stand-in over real HTTP, with the token shared in real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.config import Settings
from bot.wechat import errors
from bot.wechat.api import WeChatAPI
from bot.wechat.replies import OutMessage
from tests.fixtures.services import free_port
from tests.fixtures.wechat import OPENID, RecordingSleep, StubHandle, make_api

SEND = ("message/custom/send",)


def counted(api: WeChatAPI, label: str) -> float:
    assert api.metrics is not None
    return float(api.metrics.api_errors.labels(errcode=label)._value.get())


def sleeps(api: WeChatAPI) -> list[float]:
    assert isinstance(api.sleep, RecordingSleep)
    return api.sleep.delays


@pytest.fixture
async def two_workers(wechat_stub: StubHandle, settings: Settings, redis_url: str
                      ) -> AsyncIterator[tuple[WeChatAPI, WeChatAPI]]:
    """Two clients as two worker processes would have them: own HTTP session, own Redis connection."""
    stub_settings = settings.with_(wechat_api_base=wechat_stub.url)
    async with aiohttp.ClientSession() as h1, aiohttp.ClientSession() as h2:
        r1, r2 = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        yield make_api(h1, stub_settings, r1), make_api(h2, stub_settings, r2)
        await r1.aclose()
        await r2.aclose()


# -- endpoints --------------------------------------------------------------------------------

async def test_customer_service_messages_reach_the_student(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    media_id = await wechat_api.upload_media("image", b"\xff\xd8\xff photo", "photo.jpg")
    await wechat_api.send_text(OPENID, "你好 <b>]]></b>")
    await wechat_api.send_image(OPENID, media_id)
    await wechat_api.send_news(OPENID, "办理指南", "三步完成", "https://example.edu/guide")
    await wechat_api.send_message(OutMessage.text("最后一条"), OPENID)
    inbox = await wechat_stub.inbox()
    assert [m["type"] for m in inbox] == ["text", "image", "news", "text"]
    assert inbox[0]["payload"] == {"content": "你好 <b>]]></b>"}
    assert inbox[1]["payload"] == {"media_id": media_id}
    assert inbox[2]["payload"]["articles"][0]["title"] == "办理指南"


async def test_media_round_trip(wechat_api: WeChatAPI) -> None:
    media_id = await wechat_api.upload_media("image", b"\x89PNG data", "scan.png")
    media = await wechat_api.get_media(media_id)
    assert (media.data, media.content_type, media.filename) == (b"\x89PNG data", "image/png", f"{media_id}.png")


async def test_media_error_comes_back_as_json_not_as_an_image(wechat_api: WeChatAPI) -> None:
    with pytest.raises(errors.InvalidMedia) as caught:
        await wechat_api.get_media("expired-or-unknown")
    assert caught.value.errcode == 40007 and caught.value.rid


async def test_template_send_and_client_msg_id(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction(kind="subscribe")
    data = {"thing1": "审核通过", "time2": "2026-06-01", "character_string3": "GB-0001"}
    first = await wechat_api.send_template(OPENID, "TPL_REVIEW", data, url="https://example.edu/r",
                                           client_msg_id="review:1")
    again = await wechat_api.send_template(OPENID, "TPL_REVIEW", data, client_msg_id="review:1")
    assert first == again
    inbox = await wechat_stub.inbox()
    assert len(inbox) == 1
    assert inbox[0]["payload"]["data"]["thing1"] == {"value": "审核通过"}
    assert inbox[0]["payload"]["url"] == "https://example.edu/r"


async def test_user_info_and_typing(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    assert (await wechat_api.user_info(OPENID))["subscribe"] == 0
    await wechat_stub.interaction()
    assert (await wechat_api.user_info(OPENID))["subscribe"] == 1
    await wechat_api.typing(OPENID, True)
    await wechat_api.typing(OPENID, False)


async def test_menu_with_chinese_names_is_sent_unescaped(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    menu = {"button": [{"type": "click", "name": "绑定身份", "key": "BIND"}]}
    await wechat_api.create_menu(menu)
    assert wechat_stub.state.menu == menu


# -- errcode mapping --------------------------------------------------------------------------

MAPPED = sorted(set(errors.ERRORS) - {40001, 40014, 42001, -1})


@pytest.mark.parametrize("code", MAPPED)
async def test_every_errcode_maps_to_its_exception(wechat_api: WeChatAPI, wechat_stub: StubHandle,
                                                   code: int) -> None:
    await wechat_api.user_info(OPENID)  # token first, so the fault hits the business call
    await wechat_stub.faults(code, paths=("user/info",))
    with pytest.raises(errors.WeChatAPIError) as caught:
        await wechat_api.user_info(OPENID)
    error = caught.value
    assert type(error) is errors.ERRORS[code]
    assert (error.errcode, error.retryable) == (code, False)
    assert error.rid and " rid:" not in error.errmsg
    assert counted(wechat_api, str(code)) == 1
    assert (await wechat_stub.calls())["user/info"] == 2  # no retry of a definite answer


async def test_unknown_errcode_is_the_base_api_error(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(48001, paths=("user/info",))
    with pytest.raises(errors.WeChatAPIError) as caught:
        await wechat_api.user_info(OPENID)
    assert type(caught.value) is errors.WeChatAPIError and caught.value.errcode == 48001


async def test_stub_rules_surface_as_typed_errors(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    with pytest.raises(errors.OutOfWindow):
        await wechat_api.send_text(OPENID, "窗口未打开")
    with pytest.raises(errors.Unfollowed):
        await wechat_api.send_template(OPENID, "TPL_REVIEW", {"thing1": "x", "time2": "t",
                                                              "character_string3": "c"})
    await wechat_stub.interaction()
    for i in range(5):
        await wechat_api.send_text(OPENID, f"{i}")
    with pytest.raises(errors.ResponseLimit):
        await wechat_api.send_text(OPENID, "第六条")
    with pytest.raises(errors.InvalidTemplate):
        await wechat_api.send_template(OPENID, "TPL_NOPE", {})
    with pytest.raises(errors.ArgumentInvalid):
        await wechat_api.send_template(OPENID, "TPL_REVIEW", {"thing1": "太长" * 11, "time2": "t",
                                                              "character_string3": "c"})
    with pytest.raises(errors.InvalidOpenid):
        await wechat_api.user_info("not an openid")
    with pytest.raises(errors.TypingRejected):
        await wechat_api.typing(OPENID, True)
        await wechat_api.typing(OPENID, True)
    with pytest.raises(errors.InvalidMenu) as caught:
        await wechat_api.create_menu({"button": [{"type": "click", "name": "太长的菜单名字", "key": "K"}]})
    assert caught.value.errcode == 40018


async def test_quota_error(wechat_stub_factory: object, settings: Settings, redis_client: aioredis.Redis) -> None:
    stub = await wechat_stub_factory(daily_template_quota=0)  # type: ignore[operator]
    async with aiohttp.ClientSession() as http:
        api = make_api(http, settings.with_(wechat_api_base=stub.url), redis_client)
        await stub.interaction(kind="subscribe")
        with pytest.raises(errors.QuotaExceeded):
            await api.send_template(OPENID, "TPL_REVIEW", {"thing1": "x", "time2": "t", "character_string3": "c"})


async def test_wrong_secret_is_a_credential_error_without_retries(wechat_stub: StubHandle, settings: Settings,
                                                                  redis_client: aioredis.Redis) -> None:
    async with aiohttp.ClientSession() as http:
        api = make_api(http, settings.with_(wechat_api_base=wechat_stub.url, wechat_secret="wrong"), redis_client)
        with pytest.raises(errors.CredentialError):
            await api.user_info(OPENID)
    assert await wechat_stub.calls() == {"stable_token": 1}


# -- retries ----------------------------------------------------------------------------------

async def test_system_busy_is_retried_with_backoff_then_succeeds(wechat_api: WeChatAPI,
                                                                 wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await wechat_stub.faults(-1, count=2, paths=SEND)
    await wechat_api.send_text(OPENID, "终于")
    assert len(await wechat_stub.inbox()) == 1
    assert sleeps(wechat_api) == [0.2, 0.4]
    assert counted(wechat_api, "-1") == 2


async def test_retries_are_bounded(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    await wechat_stub.faults(-1, count=0, paths=SEND)
    with pytest.raises(errors.SystemBusy):
        await wechat_api.send_text(OPENID, "x")
    assert (await wechat_stub.calls())["message/custom/send"] == 3
    assert sleeps(wechat_api) == [0.2, 0.4]


async def test_server_errors_are_retried_and_reported_as_transport(wechat_api: WeChatAPI,
                                                                   wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(status=502, count=0, paths=("user/info",))
    with pytest.raises(errors.WeChatTransportError) as caught:
        await wechat_api.user_info(OPENID)
    assert caught.value.status == 502 and caught.value.retryable
    assert (await wechat_stub.calls())["user/info"] == 3
    assert counted(wechat_api, "http_502") == 3


async def test_client_errors_are_not_retried(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(status=403, count=0, paths=("user/info",))
    with pytest.raises(errors.WeChatTransportError) as caught:
        await wechat_api.user_info(OPENID)
    assert not caught.value.retryable
    assert (await wechat_stub.calls())["user/info"] == 1


async def test_timeouts_are_retried_then_raised(wechat_stub: StubHandle, settings: Settings,
                                                redis_client: aioredis.Redis) -> None:
    async with aiohttp.ClientSession() as http:
        api = make_api(http, settings.with_(wechat_api_base=wechat_stub.url), redis_client, timeout=0.05)
        await api.user_info(OPENID)
        await wechat_stub.faults(latency_ms=500, count=0, paths=("user/info",))
        with pytest.raises(errors.WeChatTransportError) as caught:
            await api.user_info(OPENID)
    assert caught.value.reason == "timeout"
    assert (await wechat_stub.calls())["user/info"] == 4
    assert counted(api, "timeout") == 3


async def test_unreachable_api_is_a_transport_error(settings: Settings, redis_client: aioredis.Redis) -> None:
    async with aiohttp.ClientSession() as http:
        api = make_api(http, settings.with_(wechat_api_base=f"http://127.0.0.1:{free_port()}"), redis_client)
        with pytest.raises(errors.WeChatTransportError):
            await api.user_info(OPENID)
    assert sleeps(api) == [0.2, 0.4]


async def test_unreachable_token_cache_is_a_transport_error(wechat_stub: StubHandle, settings: Settings) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    async with aiohttp.ClientSession() as http:
        api = make_api(http, settings.with_(wechat_api_base=wechat_stub.url), dead)
        with pytest.raises(errors.WeChatTransportError) as caught:
            await api.user_info(OPENID)
    await dead.aclose()
    assert caught.value.reason.startswith("token cache")
    assert await wechat_stub.calls() == {}


# -- tokens shared by workers -----------------------------------------------------------------

async def _warm(api_a: WeChatAPI, api_b: WeChatAPI, stub: StubHandle) -> None:
    await stub.interaction()
    await api_a.user_info(OPENID)
    await api_b.user_info(OPENID)
    assert (await stub.calls())["stable_token"] == 1


async def _stagger(stub: StubHandle, errcode: int | None = None) -> None:
    """Both first sends carry the old token; the second learns it is bad only after the first refreshed."""
    await stub.faults(errcode, latency_ms=50, paths=SEND)
    await stub.faults(errcode, latency_ms=300, paths=SEND)


async def test_expiry_is_survived_with_one_refresh_shared_by_two_workers(
        two_workers: tuple[WeChatAPI, WeChatAPI], wechat_stub: StubHandle) -> None:
    a, b = two_workers
    await _warm(a, b, wechat_stub)
    await wechat_stub.expire_tokens()
    await _stagger(wechat_stub)
    await asyncio.gather(a.send_text(OPENID, "A"), b.send_text(OPENID, "B"))
    calls = await wechat_stub.calls()
    assert calls["stable_token"] == 1 + 1  # the warm-up fetch, then exactly one refresh for both
    assert calls["message/custom/send"] == 4  # two 42001 answers, two retries
    assert sorted(m["payload"]["content"] for m in await wechat_stub.inbox()) == ["A", "B"]
    assert counted(a, "42001") == 1 and counted(b, "42001") == 1


async def test_invalid_credential_is_survived_with_one_refresh_shared_by_two_workers(
        two_workers: tuple[WeChatAPI, WeChatAPI], wechat_stub: StubHandle) -> None:
    a, b = two_workers
    await _warm(a, b, wechat_stub)
    await _stagger(wechat_stub, 40001)
    await asyncio.gather(a.send_text(OPENID, "A"), b.send_text(OPENID, "B"))
    calls = await wechat_stub.calls()
    assert calls["stable_token"] == 2
    assert calls["message/custom/send"] == 4
    assert len(await wechat_stub.inbox()) == 2


async def test_a_token_that_expired_at_wechat_is_replaced(wechat_api: WeChatAPI, wechat_stub: StubHandle) -> None:
    await wechat_api.user_info(OPENID)
    await wechat_stub.advance(7201)  # WeChat's clock passes the expiry; our cache still holds the token
    await wechat_api.user_info(OPENID)
    assert await wechat_stub.calls() == {"stable_token": 2, "user/info": 3}
    assert counted(wechat_api, "42001") == 1


async def test_a_token_error_is_refreshed_exactly_once_per_call(wechat_api: WeChatAPI,
                                                                wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(40001, count=0, paths=("user/info",))
    with pytest.raises(errors.AccessTokenInvalid):
        await wechat_api.user_info(OPENID)
    assert await wechat_stub.calls() == {"stable_token": 2, "user/info": 2}
    assert sleeps(wechat_api) == []


async def test_busy_after_a_refresh_does_not_buy_a_second_refresh(wechat_api: WeChatAPI,
                                                                  wechat_stub: StubHandle) -> None:
    await wechat_api.user_info(OPENID)
    await wechat_stub.faults(42001, count=1, paths=("user/info",))
    await wechat_stub.faults(-1, count=1, paths=("user/info",))
    await wechat_stub.faults(40001, count=0, paths=("user/info",))
    with pytest.raises(errors.AccessTokenInvalid):
        await wechat_api.user_info(OPENID)
    assert await wechat_stub.calls() == {"stable_token": 2, "user/info": 4}
