"""The official WeChat vectors (reference/wechat.md §1.6) through the real HTTP callback.

The 2014 vectors carry 2014 timestamps: the clock is injected, so they are tested as they are.
"""

from __future__ import annotations

import pytest
from wechatpy import parse_message

from bot.config import Settings
from bot.sandbox.client import WeChatServer
from bot.wechat.crypto import sha1_signature
from tests.fixtures.app import Clock, GradbotFactory

V1_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2Ld"
    "JF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5"
    "VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXg"
    "CSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9"
    "GhglF2PE="
)

# (token, EncodingAESKey, appid, timestamp, nonce, msg_signature, Encrypt or None, openid, content)
V1 = ("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2", "1409735669",
      "1320562132", "5d197aaffba7e9b25a30732f161a50dee96bd5fa", V1_ENCRYPT, "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
      "abcdteT")
V2 = ("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a", "1411525903",
      "461056294", "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
      "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGy"
      "mzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+"
      "P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNds"
      "hoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdC"
      "RxthuL0=",
      "messense", "test")
V3 = ("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7", "1409659813",
      "1372623149", "477715d11cdb4164915debcba66cb864d751f3e6",
      "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
      "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
      "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUc"
      "allcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5"
      "Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==",
      "mycreate", "hello")


def _vector_settings(base: Settings, v: tuple[str, ...]) -> Settings:
    return base.with_(wechat_token=v[0], wechat_aes_key=v[1], wechat_appid=v[2])


@pytest.mark.parametrize("vector", [V1, V2, V3], ids=["official-oa-sample", "wechatpy", "wecom-csharp"])
async def test_official_safe_mode_vector_decrypts_verifies_and_is_answered_encrypted(
    make_gradbot: GradbotFactory, settings: Settings, vector: tuple[str, ...]
) -> None:
    token, _, _, ts, nonce, msg_sig, encrypt, openid, content = vector
    bot = await make_gradbot(_vector_settings(settings, vector), clock=Clock(float(ts)))
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    query = (f"signature={sha1_signature(token, ts, nonce)}&timestamp={ts}&nonce={nonce}"
             f"&encrypt_type=aes&msg_signature={msg_sig}")
    resp = await bot.client.post(f"/wechat?{query}", data=body)
    assert resp.status == 200
    raw = await resp.read()
    reply = bot.wechat.decode(raw)  # verifies MsgSignature and the appid inside the envelope
    assert reply is not None and reply["ToUserName"] == openid and reply["MsgType"] == "text"
    assert b"<Encrypt>" in raw and content not in raw.decode()


async def test_official_vector_with_wrong_appid_is_refused(make_gradbot: GradbotFactory, settings: Settings) -> None:
    bot = await make_gradbot(_vector_settings(settings, V1).with_(wechat_appid="wx0000000000000000"),
                             clock=Clock(float(V1[3])))
    token, _, _, ts, nonce, msg_sig, encrypt, _, _ = V1
    query = (f"signature={sha1_signature(token, ts, nonce)}&timestamp={ts}&nonce={nonce}"
             f"&encrypt_type=aes&msg_signature={msg_sig}")
    resp = await bot.client.post(f"/wechat?{query}", data=f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    assert resp.status == 403


async def test_official_vector_with_forged_msg_signature_is_refused(
    make_gradbot: GradbotFactory, settings: Settings
) -> None:
    bot = await make_gradbot(_vector_settings(settings, V1), clock=Clock(float(V1[3])))
    token, _, _, ts, nonce, _, encrypt, _, _ = V1
    query = (f"signature={sha1_signature(token, ts, nonce)}&timestamp={ts}&nonce={nonce}"
             f"&encrypt_type=aes&msg_signature={'0' * 40}")
    resp = await bot.client.post(f"/wechat?{query}", data=f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    assert resp.status == 403


def test_official_plain_signature_vectors() -> None:
    assert sha1_signature("spamtest", "1409735669", "1320562132") == "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
    assert sha1_signature("AAAAA", "1714037059", "486452656") == "899cf89e464efb63f54ddac96b0a0a235f53aa78"


async def test_url_verification_echoes_echostr(make_gradbot: GradbotFactory, settings: Settings) -> None:
    bot = await make_gradbot(settings.with_(wechat_token="AAAAA"), clock=Clock(1714036504))
    ok = await bot.client.get("/wechat?signature=f464b24fc39322e44b38aa78f5edd27bd1441696"
                              "&timestamp=1714036504&nonce=1514711492&echostr=4375120948345356249")
    assert ok.status == 200 and await ok.text() == "4375120948345356249"
    bad = await bot.client.get("/wechat?signature=0&timestamp=1714036504&nonce=1514711492&echostr=x")
    assert bad.status == 403


async def test_plain_reply_round_trips_through_wechatpy_parser(make_gradbot: GradbotFactory) -> None:
    bot = await make_gradbot()
    resp = await bot.post_xml(bot.wechat.text_xml("oStudentA", "帮助"), "oStudentA")
    message = parse_message(await resp.text())
    assert message.type == "text" and message.target == "oStudentA"
    assert message.source == bot.wechat.account and "实名认证" in message.content


async def test_previous_aes_key_still_opens_messages_and_reply_uses_it(
    make_gradbot: GradbotFactory, settings: Settings
) -> None:
    old, new = V1[1], V2[1]
    s = settings.with_(wechat_aes_key=new, wechat_aes_key_previous=old)
    bot = await make_gradbot(s)
    sender = WeChatServer(token=s.wechat_token, appid=s.wechat_appid, aes_key=old, clock=bot.clock)
    query, body = sender.sign(sender.text_xml("oRotating", "帮助"), "oRotating")
    resp = await bot.client.post(f"/wechat?{query}", data=body)
    assert resp.status == 200
    reply = sender.decode(await resp.read())  # decrypts only if sealed with the old key
    assert reply is not None and "实名认证" in reply["Content"]
