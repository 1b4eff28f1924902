"""Issue 9: what bench/fuzz.py found in the callback in its first minute (each was a 500)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from bot.wechat.crypto import sha1_signature
from tests.fixtures.app import Gradbot


async def _post(gradbot: Gradbot, query: dict[str, str], body: bytes) -> int:
    resp = await gradbot.client.post(f"/wechat?{urlencode(query)}", data=body)
    return resp.status


@pytest.mark.parametrize("signature", ["\x18«èØ\x99æö\x81):", "签名"])
async def test_a_non_ascii_signature_is_refused_not_a_crash(gradbot: Gradbot, signature: str) -> None:
    query = {"signature": signature, "timestamp": str(int(gradbot.clock())), "nonce": "1"}
    assert await _post(gradbot, query, b"<xml/>") == 403


async def test_a_signature_that_is_not_utf8_is_refused(gradbot: Gradbot) -> None:
    resp = await gradbot.client.post(f"/wechat?signature=%ED%B3%BF%FF&timestamp={int(gradbot.clock())}&nonce=1",
                                     data=b"<xml/>")
    assert resp.status == 403


@pytest.mark.parametrize("timestamp", ["²", "٣٤", "９９"])
async def test_a_timestamp_of_unicode_digits_is_refused(gradbot: Gradbot, timestamp: str) -> None:
    query = {"signature": sha1_signature("testtoken", timestamp, "1"), "timestamp": timestamp, "nonce": "1"}
    assert await _post(gradbot, query, b"<xml/>") == 403


async def test_a_message_type_with_nested_elements_is_malformed(gradbot: Gradbot) -> None:
    xml = "<xml><FromUserName a='1'>oX</FromUserName><MsgType><b>text</b></MsgType></xml>"
    query, body = gradbot.wechat.sign(xml, "oX")
    resp = await gradbot.client.post(f"/wechat?{query}", data=body)
    assert resp.status == 400
