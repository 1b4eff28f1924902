"""Every malformed or hostile callback gets the right status, is counted, and never becomes a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from bot.config import Settings
from bot.sandbox.client import WeChatServer
from bot.wechat.crypto import sha1_signature
from tests.fixtures.app import Gradbot, GradbotFactory

SAFE_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def _query(bot: Gradbot, **override: str) -> str:
    ts = str(int(bot.clock()))
    q = {"signature": sha1_signature(bot.wechat.token, ts, "42"), "timestamp": ts, "nonce": "42"}
    q.update(override)
    return urlencode({k: v for k, v in q.items() if v is not None})


async def _metric(bot: Gradbot, needle: str) -> float:
    text = await (await bot.client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(needle):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"signature": ""}, "signature"),
        ({"signature": "0" * 40}, "signature"),
        ({"timestamp": "not-a-number"}, "signature"),
    ],
)
async def test_bad_signature_is_403(gradbot: Gradbot, override: dict[str, str], reason: str) -> None:
    resp = await gradbot.client.post(f"/wechat?{_query(gradbot, **override)}",
                                     data=gradbot.wechat.text_xml("oA", "hi"))
    assert resp.status == 403
    assert await _metric(gradbot, f'gradbot_rejected_requests_total{{reason="{reason}"}}') == 1


async def test_missing_query_is_403(gradbot: Gradbot) -> None:
    resp = await gradbot.client.post("/wechat", data=gradbot.wechat.text_xml("oA", "hi"))
    assert resp.status == 403


async def test_stale_timestamp_is_403_even_when_signed(gradbot: Gradbot) -> None:
    xml = gradbot.wechat.text_xml("oA", "hi")
    resp = await gradbot.post_xml(xml, "oA", timestamp=str(int(gradbot.clock()) - 601))
    assert resp.status == 403
    assert await _metric(gradbot, 'gradbot_rejected_requests_total{reason="stale"}') == 1
    fresh = await gradbot.post_xml(xml, "oA", timestamp=str(int(gradbot.clock()) - 590))
    assert fresh.status == 200


async def test_body_over_64_kib_is_413(gradbot: Gradbot) -> None:
    xml = gradbot.wechat.text_xml("oA", "x" * (64 * 1024))
    resp = await gradbot.post_xml(xml, "oA")
    assert resp.status == 413
    assert await _metric(gradbot, 'gradbot_rejected_requests_total{reason="too_large"}') == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"ToUserName": "gh", "MsgType": "text"}', "not_xml"),
        ("<xml><ToUserName>gh</ToUserName><FromUserName>oA", "malformed"),
        ("<xml><MsgType>text</MsgType></xml>", "malformed"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>', "doctype"),
        ('<!DOCTYPE x SYSTEM "file:///etc/passwd"><xml/>', "doctype"),
        ("", "not_xml"),
    ],
    ids=["json", "truncated", "no-sender", "internal-entity", "external-entity", "empty"],
)
async def test_malformed_bodies_are_400(gradbot: Gradbot, body: str, reason: str) -> None:
    resp = await gradbot.client.post(f"/wechat?{_query(gradbot)}", data=body.encode())
    assert resp.status == 400
    assert await _metric(gradbot, f'gradbot_rejected_requests_total{{reason="{reason}"}}') == 1


async def test_non_utf8_body_is_400(gradbot: Gradbot) -> None:
    resp = await gradbot.client.post(f"/wechat?{_query(gradbot)}", data="<xml>帮助</xml>".encode("gbk"))
    assert resp.status == 400


async def test_openid_in_query_must_match_sender(gradbot: Gradbot) -> None:
    resp = await gradbot.client.post(f"/wechat?{_query(gradbot, openid='oSomeoneElse')}",
                                     data=gradbot.wechat.text_xml("oA", "帮助"))
    assert resp.status == 400


async def test_control_characters_are_stripped_and_answered(gradbot: Gradbot) -> None:
    reply = await gradbot.say("oA", "帮\x1d助\x00")
    assert reply is not None and "实名认证" in reply["Content"]


async def test_cdata_terminator_in_user_text_keeps_reply_valid(gradbot: Gradbot) -> None:
    reply = await gradbot.say("oA", "x]]><Evil>1</Evil>")
    assert reply is not None and reply["MsgType"] == "text"


async def test_unknown_message_type_gets_a_helpful_text(gradbot: Gradbot) -> None:
    xml = gradbot.wechat._xml("oA", "shortvideo", "<MediaId>m</MediaId><MsgId>77</MsgId>")
    resp = await gradbot.post_xml(xml, "oA")
    reply = gradbot.wechat.decode(await resp.read())
    assert reply is not None and "看不懂" in reply["Content"]


async def test_unknown_event_is_answered_success(gradbot: Gradbot) -> None:
    resp = await gradbot.post_xml(gradbot.wechat.event_xml("oA", "subscribe_msg_popup_event"), "oA")
    assert resp.status == 200 and await resp.text() == "success"


async def test_unsubscribe_is_answered_success(gradbot: Gradbot) -> None:
    resp = await gradbot.post_xml(gradbot.wechat.event_xml("oA", "unsubscribe"), "oA")
    assert await resp.text() == "success"


async def test_subscribe_is_welcomed(gradbot: Gradbot) -> None:
    resp = await gradbot.post_xml(gradbot.wechat.event_xml("oA", "subscribe"), "oA")
    reply = gradbot.wechat.decode(await resp.read())
    assert reply is not None and "欢迎" in reply["Content"]


class TestSafeMode:
    @pytest.fixture
    async def safe(self, make_gradbot: GradbotFactory, settings: Settings) -> Gradbot:
        return await make_gradbot(settings.with_(wechat_aes_key=SAFE_KEY))

    async def test_garbage_ciphertext_is_400(self, safe: Gradbot) -> None:
        encrypt = "QUJD" * 20
        ts = str(int(safe.clock()))
        q = _query(safe, encrypt_type="aes",
                   msg_signature=sha1_signature(safe.wechat.token, ts, "42", encrypt))
        resp = await safe.client.post(f"/wechat?{q}", data=f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        assert resp.status == 400

    async def test_missing_encrypt_element_is_400(self, safe: Gradbot) -> None:
        q = _query(safe, encrypt_type="aes", msg_signature="0" * 40)
        resp = await safe.client.post(f"/wechat?{q}", data="<xml><ToUserName>gh</ToUserName></xml>")
        assert resp.status == 400

    async def test_message_sealed_with_an_unknown_key_is_400(self, safe: Gradbot) -> None:
        other = WeChatServer(token=safe.wechat.token, appid=safe.wechat.appid,
                             aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", clock=safe.clock)
        query, body = other.sign(other.text_xml("oA", "帮助"), "oA")
        resp = await safe.client.post(f"/wechat?{query}", data=body)
        assert resp.status == 400

    async def test_message_for_another_appid_is_403(self, safe: Gradbot) -> None:
        other = WeChatServer(token=safe.wechat.token, appid="wxanotheraccount0", aes_key=SAFE_KEY, clock=safe.clock)
        query, body = other.sign(other.text_xml("oA", "帮助"), "oA")
        resp = await safe.client.post(f"/wechat?{query}", data=body)
        assert resp.status == 403

    async def test_signed_and_sealed_message_is_answered_sealed(self, safe: Gradbot) -> None:
        reply = await safe.say("oA", "帮助")
        assert reply is not None and "实名认证" in reply["Content"]


async def test_server_survives_all_of_it(gradbot: Gradbot) -> None:
    for body in (b"\xff\xfe", b"<xml>", b"{}", b"<!DOCTYPE a><xml/>"):
        await gradbot.client.post(f"/wechat?{_query(gradbot)}", data=body)
    assert (await gradbot.client.get("/healthz")).status == 200
    assert await gradbot.say("oA", "帮助") is not None
