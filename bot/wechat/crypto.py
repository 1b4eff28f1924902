"""Callback signatures and safe-mode (AES) envelopes.

wechatpy supplies the cipher (``PrpCrypto``); signature checks are ours because wechatpy compares with
``!=`` and raises non-wechatpy exceptions (``UnicodeDecodeError``) on a wrong key. Key rotation (try the
current key, then the previous one, and answer with whichever worked) is WeChat's documented practice
and neither wechatpy nor WeRoBot does it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from wechatpy.crypto import InvalidAppIdException, PrpCrypto


class CallbackRejected(Exception):
    """The request is not a genuine, fresh WeChat callback; ``reason`` feeds the metrics label."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def sha1_signature(*parts: str) -> str:
    # surrogatepass: a query string may decode to lone surrogates; it must fail the check, not raise.
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - WeChat's protocol


def check_signature(token: str, signature: str, timestamp: str, nonce: str, *extra: str) -> None:
    expected = sha1_signature(token, timestamp, nonce, *extra)
    # Bytes: compare_digest refuses non-ASCII str (TypeError, found by bench/fuzz.py).
    given = signature.lower().encode("utf-8", "surrogatepass")
    if not signature or not hmac.compare_digest(expected.encode("ascii"), given):
        raise CallbackRejected("signature")


def check_timestamp(timestamp: str, now: float, window: int) -> None:
    if not (timestamp.isascii() and timestamp.isdigit()):  # "²".isdigit() is True, int("²") raises
        raise CallbackRejected("timestamp")
    if abs(now - int(timestamp)) > window:
        raise CallbackRejected("stale")


@dataclass(frozen=True, slots=True)
class Envelope:
    """Decrypted body plus the key that opened it (the reply is sealed with the same key)."""

    xml: str
    key: bytes


_ENCRYPT = re.compile(rb"<Encrypt>\s*<!\[CDATA\[([A-Za-z0-9+/=\s]+)\]\]>\s*</Encrypt>")


def extract_encrypt(body: bytes) -> str:
    """The ``Encrypt`` element of a safe-mode body, found without running an XML parser on it."""
    match = _ENCRYPT.search(body)
    if match is None:
        raise CallbackRejected("no_encrypt", status=400)
    return match.group(1).decode("ascii").strip()


def aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def open_envelope(encrypt: str, keys: tuple[bytes, ...], appid: str) -> Envelope:
    for key in keys:
        try:
            xml = PrpCrypto(key).decrypt(encrypt, appid)
        except InvalidAppIdException:
            raise CallbackRejected("appid") from None
        except (ValueError, UnicodeDecodeError, binascii.Error, IndexError, struct.error):
            # A wrong key surfaces as a decode, padding or length error, never a wechatpy exception.
            continue
        return Envelope(xml=str(xml), key=key)
    raise CallbackRejected("decrypt", status=400)


def seal(xml: str, key: bytes, token: str, appid: str, timestamp: str, nonce: str) -> str:
    encrypt = PrpCrypto(key).encrypt(xml, appid)
    encrypt = encrypt.decode("ascii") if isinstance(encrypt, bytes) else str(encrypt)
    signature = sha1_signature(token, timestamp, nonce, encrypt)
    return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]>"
            f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")
