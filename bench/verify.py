"""Before any measurement: a signed message gets 200 and a parseable XML reply, a forged one gets 403."""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from bench import wxreq


class VerifyError(RuntimeError):
    pass


def post(url: str, query: str, body: str) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", f"{parts.path}?{query}", body.encode(), {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def _reply_xml(acct: wxreq.Account, text: str) -> ET.Element:
    root = ET.fromstring(text)
    if not acct.safe:
        return root
    enc, sig = root.findtext("Encrypt"), root.findtext("MsgSignature")
    ts, nonce = root.findtext("TimeStamp"), root.findtext("Nonce")
    if not (enc and sig and ts and nonce):
        raise VerifyError(f"safe-mode reply lacks Encrypt/MsgSignature/TimeStamp/Nonce: {text[:200]}")
    if wxreq.sign(acct.token, ts, nonce, enc) != sig:
        raise VerifyError("safe-mode reply has a wrong MsgSignature")
    return ET.fromstring(wxreq.Encryptor(acct.aes_key, acct.appid).decrypt(enc))


def check(url: str, acct: wxreq.Account) -> dict[str, object]:
    """Raises VerifyError unless the server answers like a WeChat callback should."""
    (query, body), = wxreq.pool(acct, 1)
    status, text = post(url, query, body)
    if status != 200:
        raise VerifyError(f"signed request got HTTP {status}: {text[:200]}")
    try:
        reply = _reply_xml(acct, text)
    except ET.ParseError as exc:
        raise VerifyError(f"reply is not XML ({exc}): {text[:200]}") from exc
    openid = query.rsplit("openid=", 1)[1]
    if reply.findtext("ToUserName") != openid or not reply.findtext("MsgType"):
        raise VerifyError(f"reply is not addressed to the sender: {ET.tostring(reply)[:200]!r}")
    forged = [query.replace("signature=", "signature=0", 1)]
    if acct.safe:
        forged.append(query.replace("msg_signature=", "msg_signature=0", 1))
    for bad in forged:
        forged_status, _ = post(url, bad, body)
        if forged_status != 403:
            raise VerifyError(f"forged signature got HTTP {forged_status}, expected 403 ({bad[:60]}...)")
    return {"reply_type": reply.findtext("MsgType"), "reply_sample": (reply.findtext("Content") or "")[:60],
            "forged_status": forged_status}
