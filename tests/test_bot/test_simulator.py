"""The chat simulator's server side, through real HTTP: gradbot on a loopback port, the WeChat
stand-in on another; the simulator signs callbacks to its own /wechat and reads the stand-in."""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.config import Settings
from bot.demo.accounts import push_menu
from bot.services.notify.templates import load_templates
from bot.simulator.views import MAX_PHOTO
from bot.wechat.api import WeChatAPI
from storage.tokens import MemoryTokenCache
from tests.fixtures.app import Clock, Gradbot, GradbotFactory
from tests.fixtures.services import free_port
from tests.fixtures.wechat import StubFactory, StubHandle

OPENID = "oSim_Student_0000000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
async def stand_in(wechat_stub_factory: StubFactory) -> StubHandle:
    return await wechat_stub_factory(templates=load_templates().stub_templates())


@pytest.fixture
async def sim_settings(settings: Settings, stand_in: StubHandle, redis_client: aioredis.Redis) -> Settings:
    return settings.with_(simulator=True, wechat_api_base=stand_in.url)


async def _start(make_gradbot: GradbotFactory, settings: Settings) -> Gradbot:
    # The simulator signs with the app's clock; a real time keeps both sides within WeChat's window.
    return await make_gradbot(settings, clock=Clock(time.time()))


async def _send(gb: Gradbot, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await gb.client.post("/simulator/api/send", json={"openid": OPENID, **body})
    return resp.status, await resp.json()


def _texts(data: dict[str, Any]) -> str:
    return "\n".join(r.get("content", "") for r in data["replies"])


async def test_off_unless_enabled(make_gradbot: GradbotFactory, settings: Settings, stand_in: StubHandle) -> None:
    for s in (settings.with_(wechat_api_base=stand_in.url), settings.with_(simulator=True)):
        gb = await _start(make_gradbot, s)  # not asked for; asked for but pointed at real WeChat
        for path in ("/simulator/", "/simulator/api/config"):
            assert (await gb.client.get(path)).status == 404
        status = (await gb.client.post("/simulator/api/send", json={"openid": OPENID, "text": "hi"})).status
        assert status == 404


async def test_the_browser_never_sees_the_token_or_the_aes_key(make_gradbot: GradbotFactory,
                                                                sim_settings: Settings) -> None:
    s = sim_settings.with_(wechat_token="Tok3nOnlyTheServerKnows", wechat_aes_key=AES_KEY)
    gb = await _start(make_gradbot, s)
    seen = ""
    for path in ("/simulator", "/simulator/api/config", "/simulator/static/sim.js"):
        resp = await gb.client.get(path)
        assert resp.status == 200, path
        seen += await resp.text()
    assert "Tok3nOnlyTheServerKnows" not in seen and AES_KEY not in seen
    page = await gb.client.get("/simulator/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_follow_and_text_are_signed_callbacks_and_the_passive_reply_is_shown(
        make_gradbot: GradbotFactory, sim_settings: Settings, stand_in: StubHandle) -> None:
    gb = await _start(make_gradbot, sim_settings)
    status, data = await _send(gb, event="subscribe")
    assert status == 200, data
    assert "欢迎" in _texts(data) and data["replies"][0]["channel"] == "reply"
    assert stand_in.state.user(OPENID).followed  # the stand-in heard of the interaction first
    status, data = await _send(gb, text="帮助")
    assert status == 200 and data["sent"] == {"type": "text", "content": "帮助", "at": data["sent"]["at"]}
    assert "实名认证" in _texts(data)


async def test_safe_mode_encrypts_the_callback_and_decrypts_the_reply(make_gradbot: GradbotFactory,
                                                                      sim_settings: Settings) -> None:
    gb = await _start(make_gradbot, sim_settings.with_(wechat_aes_key=AES_KEY))
    status, data = await _send(gb, event="subscribe")
    assert status == 200, data
    assert "欢迎" in _texts(data)


async def test_the_menu_is_what_was_pushed_and_a_click_starts_the_demo_procedure(
        make_gradbot: GradbotFactory, sim_settings: Settings) -> None:
    gb = await _start(make_gradbot, sim_settings)
    assert (await (await gb.client.get("/simulator/api/config")).json())["menu"] == []  # nothing pushed yet
    assert await push_menu(sim_settings) == 3
    config = await (await gb.client.get("/simulator/api/config")).json()
    keys = [b.get("key") for top in config["menu"] for b in top["sub_button"]]
    assert "DEMO_PHOTO" in keys and config["hints"]["school"] == "汉江师范学院"
    status, data = await _send(gb, event="CLICK", key="DEMO_PHOTO")
    assert status == 200 and "同意" in _texts(data)  # the procedure starts with binding's consent


async def test_a_photo_goes_to_the_media_store_first_and_can_be_shown(
        make_gradbot: GradbotFactory, sim_settings: Settings, stand_in: StubHandle, studio_jpeg: bytes) -> None:
    gb = await _start(make_gradbot, sim_settings)
    form = aiohttp.FormData()
    form.add_field("openid", OPENID)
    form.add_field("photo", studio_jpeg, filename="me.jpg", content_type="image/jpeg")
    resp = await gb.client.post("/simulator/api/send", data=form)
    data = await resp.json()
    assert resp.status == 200, data
    media_id = data["sent"]["media_id"]
    assert stand_in.state.get_media(media_id).data == studio_jpeg
    assert data["replies"] and data["replies"][0]["type"] == "text"  # a photo outside a procedure is answered
    shown = await gb.client.get(f"/simulator/api/media/{media_id}")
    assert shown.status == 200 and shown.content_type == "image/jpeg" and await shown.read() == studio_jpeg


async def test_the_inbox_shows_customer_service_and_template_messages_in_order(
        make_gradbot: GradbotFactory, sim_settings: Settings, stand_in: StubHandle) -> None:
    gb = await _start(make_gradbot, sim_settings)
    await stand_in.interaction(OPENID)
    async with aiohttp.ClientSession() as http:
        api = WeChatAPI(http, sim_settings, MemoryTokenCache())
        await api.send_text(OPENID, "付款收到了 http://127.0.0.1:8080/pay/x")
        await api.send_template(OPENID, "TPL_REVIEW_RESULT", {"thing1": "毕业生图像采集", "phrase2": "通过",
                                                                "thing3": "符合要求", "thing4": "无需操作",
                                                                "time5": "2026-11-23 10:05"},
                                url="http://127.0.0.1:8080/notice/abc")
    first = await (await gb.client.get(f"/simulator/api/inbox/{OPENID}?since=0")).json()
    text, template = first["items"]
    assert first["next"] == 2
    assert text["type"] == "text" and text["channel"] == "cs" and "付款收到了" in text["content"]
    assert template["type"] == "template" and template["title"] == "审核结果通知"
    assert {"name": "审核结果", "value": "通过"} in template["fields"]
    assert template["url"] == "http://127.0.0.1:8080/notice/abc"
    again = await (await gb.client.get(f"/simulator/api/inbox/{OPENID}?since=2")).json()
    assert again == {"items": [], "next": 2}
    restarted = await (await gb.client.get(f"/simulator/api/inbox/{OPENID}?since=9")).json()
    assert len(restarted["items"]) == 2  # a cursor past the end: the stand-in restarted, show all


@pytest.mark.parametrize(("body", "needle"), [
    ({"openid": "short", "text": "hi"}, "openid"),
    ({"openid": "o/../../etc/passwd", "text": "hi"}, "openid"),
    ({"openid": OPENID, "text": "   "}, "text"),
    ({"openid": OPENID, "text": "字" * 2001}, "text"),
    ({"openid": OPENID, "event": "LOCATION"}, "event"),
    ({"openid": OPENID, "event": "CLICK"}, "key"),
    ({"openid": OPENID, "event": "CLICK", "key": 7}, "key"),
    (["not", "an", "object"], "object"),
])
async def test_bad_input_is_refused_with_400(make_gradbot: GradbotFactory, sim_settings: Settings,
                                             body: Any, needle: str) -> None:
    gb = await _start(make_gradbot, sim_settings)
    resp = await gb.client.post("/simulator/api/send", json=body)
    assert resp.status == 400 and needle in (await resp.json())["error"]


async def test_bad_uploads_and_lookups_are_refused(make_gradbot: GradbotFactory, sim_settings: Settings) -> None:
    gb = await _start(make_gradbot, sim_settings)
    resp = await gb.client.post("/simulator/api/send", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    form = aiohttp.FormData()
    form.add_field("openid", OPENID)
    form.add_field("photo", b"%PDF-1.4", filename="cv.pdf", content_type="application/pdf")
    resp = await gb.client.post("/simulator/api/send", data=form)
    assert resp.status == 400 and "image" in (await resp.json())["error"]
    form = aiohttp.FormData()
    form.add_field("openid", OPENID)
    form.add_field("photo", io.BytesIO(b"\xff" * (MAX_PHOTO + 1)), filename="huge.jpg", content_type="image/jpeg")
    resp = await gb.client.post("/simulator/api/send", data=form)
    assert resp.status == 400 and "larger" in (await resp.json())["error"]
    broken = b"--xyz\r\nContent-Disposition: form-data; name=\"openid\"\r\n\r\nabc"  # never ends
    resp = await gb.client.post("/simulator/api/send", data=broken,
                                headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert resp.status == 400
    assert (await gb.client.get(f"/simulator/api/inbox/{OPENID}?since=-1")).status == 400
    assert (await gb.client.get("/simulator/api/inbox/x")).status == 400
    assert (await gb.client.get("/simulator/api/media/no-such-media")).status == 404
    assert (await gb.client.get("/simulator/api/media/a.b")).status == 404


async def test_a_stand_in_that_does_not_answer_gives_502_not_500(make_gradbot: GradbotFactory,
                                                                 settings: Settings) -> None:
    gb = await _start(make_gradbot, settings.with_(simulator=True, wechat_api_base=f"http://127.0.0.1:{free_port()}"))
    status, data = await _send(gb, text="你好")
    assert status == 502 and "stand-in" in data["error"]
    assert (await gb.client.get(f"/simulator/api/inbox/{OPENID}")).status == 502
    config = await gb.client.get("/simulator/api/config")
    assert config.status == 200 and (await config.json())["menu"] == []
