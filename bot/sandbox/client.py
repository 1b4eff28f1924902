"""Plays the WeChat server: builds signed (optionally encrypted) callbacks and decodes the replies.

Used by ``gradbot send``, the tests, the benchmarks and the chat simulator, so all of them speak to
the callback exactly as WeChat does.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict
from wechatpy.crypto import PrpCrypto

from bot.wechat.crypto import aes_key, extract_encrypt, sha1_signature
from bot.wechat.replies import cdata

ACCOUNT = "gh_gradbot000001"


@dataclass
class WeChatServer:
    token: str
    appid: str = ""
    aes_key: str = ""  # set → safe mode
    account: str = ACCOUNT
    clock: Any = time.time
    _msg_id: int = field(default_factory=lambda: secrets.randbelow(10**15) * 1000)

    def next_msg_id(self) -> int:
        self._msg_id += 1
        return self._msg_id

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self._xml(openid, "text", f"<Content>{cdata(content)}</Content>"
                         f"<MsgId>{msg_id or self.next_msg_id()}</MsgId>")

    def image_xml(self, openid: str, media_id: str, pic_url: str = "", msg_id: int | None = None) -> str:
        return self._xml(openid, "image", f"<PicUrl>{cdata(pic_url)}</PicUrl><MediaId>{cdata(media_id)}"
                         f"</MediaId><MsgId>{msg_id or self.next_msg_id()}</MsgId>")

    def event_xml(self, openid: str, event: str, key: str = "", create_time: int | None = None) -> str:
        extra = f"<Event>{cdata(event)}</Event>" + (f"<EventKey>{cdata(key)}</EventKey>" if key else "")
        return self._xml(openid, "event", extra, create_time)

    def _xml(self, openid: str, kind: str, extra: str, create_time: int | None = None) -> str:
        ts = int(self.clock()) if create_time is None else create_time
        return (f"<xml><ToUserName>{cdata(self.account)}</ToUserName><FromUserName>{cdata(openid)}"
                f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType>{cdata(kind)}</MsgType>{extra}</xml>")

    def sign(self, xml: str, openid: str, timestamp: str | None = None,
             nonce: str | None = None) -> tuple[str, bytes]:
        """Query string and body of the POST WeChat would send for ``xml``."""
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or str(secrets.randbelow(10**10))
        query = {"signature": sha1_signature(self.token, timestamp, nonce), "timestamp": timestamp,
                 "nonce": nonce, "openid": openid}
        if not self.aes_key:
            return urlencode(query), xml.encode("utf-8")
        encrypt = PrpCrypto(aes_key(self.aes_key)).encrypt(xml, self.appid)
        encrypt = encrypt.decode() if isinstance(encrypt, bytes) else str(encrypt)
        query.update(encrypt_type="aes", msg_signature=sha1_signature(self.token, timestamp, nonce, encrypt))
        body = f"<xml><ToUserName>{cdata(self.account)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        return urlencode(query), body.encode("utf-8")

    def decode(self, body: bytes | str) -> dict[str, Any] | None:
        """The reply as a dict (``None`` for "success" or an empty body); checks the reply signature."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        if raw.strip() in (b"", b"success"):
            return None
        if self.aes_key:
            outer = xmltodict.parse(raw)["xml"]
            encrypt = extract_encrypt(raw)
            expected = sha1_signature(self.token, outer["TimeStamp"], outer["Nonce"], encrypt)
            if expected != outer["MsgSignature"]:
                raise ValueError("reply signature does not verify")
            raw = PrpCrypto(aes_key(self.aes_key)).decrypt(encrypt, self.appid).encode("utf-8")
        parsed: dict[str, Any] = xmltodict.parse(raw)["xml"]
        return parsed
